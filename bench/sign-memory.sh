#!/usr/bin/env bash
# Peak memory (maximum resident set, from /usr/bin/time -v) of `tokenrun sign` and
# `tokenrun verify` of one large document, detached and attached, on SoftHSM2, beside
# `openssl cms -sign` of the same document with the same key in a file. tokenrun streams the
# document (hashing as it reads), so its peak must not depend on the document's size.
#
# Usage: bench/sign-memory.sh [SIZE_MB]      (default: 1024, a 1 GiB document)
# Needs: go, openssl, softhsm2 (softhsm2-util), opensc (pkcs11-tool), GNU time (/usr/bin/time).
# The document is pseudorandom at both ends and a hole between (no disk used for the
# hole); the attached signature needs SIZE_MB of disk. Everything happens in a temporary
# directory ($TMPDIR), removed at the end.
set -euo pipefail

mb=${1:-1024}
module=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

need() { command -v "$1" >/dev/null || { echo "bench: $1 not found ($2)" >&2; exit 2; }; }
need go "install Go"
need openssl "apt-get install openssl"
need softhsm2-util "apt-get install softhsm2"
need pkcs11-tool "apt-get install opensc"
[ -x /usr/bin/time ] || { echo "bench: /usr/bin/time not found (apt-get install time)" >&2; exit 2; }
[ -e "$module" ] || { echo "bench: SoftHSM2 module $module not found" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

(cd "$root" && go build -o "$work/tokenrun" ./cmd/tokenrun)

mkdir tokens
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" >softhsm2.conf
export SOFTHSM2_CONF=$work/softhsm2.conf
softhsm2-util --init-token --free --label BENCH --so-pin 87654321 --pin 12345678 >/dev/null
printf '12345678\n' >pin
chmod 600 pin

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -subj "/CN=Bench Root/O=Test Bank" -days 1 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key 2>/dev/null
openssl req -new -key ec.key -subj "/CN=Bench ec/O=ACME LLP/C=KZ" |
  openssl x509 -req -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out ec.pem 2>/dev/null
openssl x509 -in ec.pem -outform DER -out ec.der
softhsm2-util --import ec.key --token BENCH --label ec --id 01 --pin 12345678 >/dev/null
pkcs11-tool --module "$module" --token-label BENCH --login --pin 12345678 \
  --write-object ec.der --type cert --id 01 --label ec >/dev/null 2>&1

# The document: 1 MiB of random bytes at each end, a hole between.
head -c 1048576 /dev/urandom >doc
truncate -s "${mb}M" doc
head -c 1048576 /dev/urandom | dd of=doc bs=1M seek=$((mb - 1)) conv=notrunc status=none

# peak LABEL CMD...: run CMD under GNU time, print its peak RSS and wall time.
peak() {
  local label=$1
  shift
  /usr/bin/time -v -o time.txt "$@" >/dev/null 2>run.log || { cat run.log time.txt >&2; echo "bench: $label failed" >&2; exit 1; }
  awk -v l="$label" -F': ' '
    /Maximum resident set size/ { rss = $2 }
    /Elapsed \(wall clock\)/ { wall = $2 }
    END { printf "%-38s %9.1f MiB %12s\n", l, rss / 1024, wall }' time.txt
}

sign=(./tokenrun sign --module "$module" --token "pkcs11:token=BENCH;object=ec" --pin-file pin)
printf 'document: %d MiB\n%-38s %13s %12s\n' "$mb" what "peak RSS" "wall"
peak "tokenrun sign --detached" "${sign[@]}" --detached --out det.p7s doc
peak "tokenrun verify (detached)" ./tokenrun verify --in det.p7s --content doc --roots ca.pem
peak "tokenrun sign (attached)" "${sign[@]}" --out att.p7s doc
peak "tokenrun verify (attached)" ./tokenrun verify --in att.p7s --roots ca.pem
rm -f att.p7s
peak "openssl cms -sign (detached)" openssl cms -sign -binary -outform DER -in doc -signer ec.pem -inkey ec.key -out os-det.p7s
peak "openssl cms -verify (detached)" openssl cms -verify -binary -inform DER -in os-det.p7s -content doc -CAfile ca.pem -purpose any -out /dev/null
peak "openssl cms -sign -stream (attached)" openssl cms -sign -stream -nodetach -binary -outform DER -in doc -signer ec.pem -inkey ec.key -out os-att.p7s
