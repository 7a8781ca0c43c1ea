#!/usr/bin/env bash
# Runs every fuzz target of the parsers that take outside input for SECONDS each (default
# 30), one after the other, and says what each found. The seed corpora also run as ordinary
# tests (go test ./...); new failing inputs are kept by go test under the package's
# testdata/fuzz/FuzzX/, where they become regression tests: commit them with the fix.
#
#   bench/fuzz.sh 60            # every target, a minute each
#   bench/fuzz.sh 10 FuzzRead   # only the targets whose name matches
set -u
secs=${1:-30}
only=${2:-}
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

# package and target, one a line: every parser of outside input.
targets="
./token FuzzParseURI
./ui FuzzParseAnswers
./region FuzzRegionFile
./region FuzzSet
./bundle FuzzReadVerify
./bindings/replay FuzzRead
./transcript FuzzLineReader
./ca FuzzLoadPKCS12Bytes
./internal/yamlbound FuzzCheck
./internal/termtext FuzzEscape
./token/soft FuzzState
./runtime FuzzAdmit
"
status=0
while read -r pkg name; do
	[ -z "$pkg" ] && continue
	if [ -n "$only" ] && [[ "$name" != *"$only"* ]]; then continue; fi
	start=$(date +%s)
	if out=$(go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" -parallel 2 2>&1); then
		result="ok"
	else
		result="FAILED"
		status=1
	fi
	took=$(( $(date +%s) - start ))
	execs=$(printf '%s\n' "$out" | grep -o 'execs: [0-9]*' | tail -1)
	printf '%-24s %-18s %4ss  %-6s %s\n' "$name" "$pkg" "$took" "$result" "$execs"
	if [ "$result" = FAILED ]; then
		printf '%s\n' "$out" | grep -v '^fuzz: elapsed' | tail -20 | sed 's/^/    /'
	fi
done <<< "$targets"
exit $status
