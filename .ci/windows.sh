#!/usr/bin/env bash
# The Windows build and what a Windows client sees, checked under wine on Debian. .ci/run
# calls it; anyone may run it (root, or sudo, installs what is missing). Steps:
#   1. mingw-w64 and wine64 installed when missing (apt-get)
#   2. go vet for GOOS=windows with cgo, and for the wine tests' build tag
#   3. the build without cgo: compiles for darwin/arm64, and refuses --module saying why
#      (CGO_ENABLED=0 go test ./token/pkcs11)
#   4. tokenrun.exe built by .ci/cross.sh, then cmd/tokenrun's wine tests run on it
#      (go test -tags wine): the demo end to end, enrollments from a CRLF and a UTF-16 (BOM)
#      answers file, Ctrl-C during an enrollment, data under %APPDATA%\tokenrun, module and
#      trust-file messages in Windows terms, no Unix permission warning anywhere, and the
#      wizard's smoke test (wizardSmoke in cmd/tokenrun/wine_test.go).
# Each step prints its time. Under CI=true (the default here) a missing tool fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
export CI="${CI:-true}"

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi
t0=$(date +%s)
step() { printf '== windows: %s (%ss so far)\n' "$*" "$(($(date +%s) - t0))"; }

step "mingw-w64 and wine64"
need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64-win32)
# Debian's wine64 puts its loader in /usr/lib/wine, off PATH (the wine package adds wrappers).
if ! command -v wine64 >/dev/null && [ ! -x /usr/lib/wine/wine64 ]; then
	need+=(wine64)
fi
if [ ${#need[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

step "go vet (GOOS=windows, cgo)"
GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc go vet ./...
go vet -tags wine ./cmd/tokenrun

step "without cgo: darwin/arm64 compiles, --module refused with its reason"
GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 go build -o /dev/null ./cmd/tokenrun
CGO_ENABLED=0 go test -count=1 ./token/pkcs11

step "tokenrun.exe"
dist=$(mktemp -d)
trap 'rm -rf "$dist"' EXIT
# Without -trimpath: the packages go vet compiled above are reused, so this is a link.
TRIMPATH=0 DIST="$dist" bash .ci/cross.sh windows/amd64

step "tokenrun.exe under wine"
TOKENRUN_EXE="$dist/tokenrun-windows-amd64.exe" \
	go test -count=1 -timeout 10m -tags wine -run '^TestWindowsUnderWine$' -v ./cmd/tokenrun
step "done"
