#!/usr/bin/env bash
# Times `tokenrun sign` of many small documents in ONE run (one process, one login) on
# SoftHSM2 against a shell loop of `openssl cms -sign`, one process per document, with the
# same kind of key in a PEM file, and prints the ratio. The key pair is made by OpenSSL and
# imported into SoftHSM2 (softhsm2-util --import), its certificate issued by a throwaway CA
# and stored next to it (pkcs11-tool), so both sides sign with the same key and certificate.
#
# Usage: bench/sign-vs-openssl.sh [N] [rsa|ec|both]      (defaults: 1000 both)
# Needs: go, openssl, softhsm2 (softhsm2-util), opensc (pkcs11-tool); .ci/setup-tokens.sh
# installs them. Everything happens in a temporary directory under $TMPDIR (default /tmp),
# removed at the end: TMPDIR=/dev/shm measures on tmpfs, the default on /tmp's filesystem.
set -euo pipefail

n=${1:-1000}
kinds=${2:-both}
[ "$kinds" = both ] && kinds="rsa ec"
module=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

need() { command -v "$1" >/dev/null || { echo "bench: $1 not found ($2)" >&2; exit 2; }; }
need go "install Go"
need openssl "apt-get install openssl"
need softhsm2-util "apt-get install softhsm2"
need pkcs11-tool "apt-get install opensc"
[ -e "$module" ] || { echo "bench: SoftHSM2 module $module not found" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

(cd "$root" && go build -o "$work/tokenrun" ./cmd/tokenrun)

# A private SoftHSM2 store, so the bench never touches the machine's tokens.
mkdir tokens
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$work/tokens" >softhsm2.conf
export SOFTHSM2_CONF=$work/softhsm2.conf
softhsm2-util --init-token --free --label BENCH --so-pin 87654321 --pin 12345678 >/dev/null
printf '12345678\n' >pin
chmod 600 pin

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -subj "/CN=Bench Root/O=Test Bank" -days 1 2>/dev/null

mkdir docs
for i in $(seq -w 1 "$n"); do
  printf '<PaymentOrder n="%s" amount="100.00" currency="KZT"/>\n' "$i" >"docs/order-$i.xml"
done

now() { date +%s.%N; }

printf '%-6s %6s %14s %14s %10s %10s %8s\n' key docs "tokenrun s" "openssl s" "tr sig/s" "ossl sig/s" speedup
id=0
for kind in $kinds; do
  id=$((id + 1))
  case $kind in
  rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$kind.key" 2>/dev/null ;;
  ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$kind.key" 2>/dev/null ;;
  *) echo "bench: unknown key kind $kind (want rsa or ec)" >&2; exit 2 ;;
  esac
  openssl req -new -key "$kind.key" -subj "/CN=Bench $kind/O=ACME LLP/C=KZ" |
    openssl x509 -req -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out "$kind.pem" 2>/dev/null
  openssl x509 -in "$kind.pem" -outform DER -out "$kind.der"
  softhsm2-util --import "$kind.key" --token BENCH --label "$kind" --id "0$id" --pin 12345678 >/dev/null
  pkcs11-tool --module "$module" --token-label BENCH --login --pin 12345678 \
    --write-object "$kind.der" --type cert --id "0$id" --label "$kind" >/dev/null 2>&1

  mkdir "tr-$kind" "os-$kind"
  t0=$(now)
  ./tokenrun sign --module "$module" --token "pkcs11:token=BENCH;object=$kind" --pin-file pin \
    --detached --out-dir "tr-$kind" docs/*.xml >/dev/null 2>tr-$kind.log
  t1=$(now)
  for f in docs/*.xml; do
    openssl cms -sign -binary -outform DER -in "$f" -signer "$kind.pem" -inkey "$kind.key" \
      -out "os-$kind/${f##*/}.p7s"
  done
  t2=$(now)

  # Both outputs must be good signatures, or the timing means nothing.
  last=$(printf 'order-%s.xml' "$(seq -w 1 "$n" | tail -1)")
  for side in tr os; do
    openssl cms -verify -binary -inform DER -in "$side-$kind/$last.p7s" -content "docs/$last" \
      -CAfile ca.pem -purpose any -out /dev/null 2>/dev/null ||
      { echo "bench: $side-$kind/$last.p7s does not verify" >&2; exit 1; }
  done
  ./tokenrun verify --in "tr-$kind/$last.p7s" --content "docs/$last" --roots ca.pem >/dev/null
  [ "$(ls "tr-$kind" | wc -l)" -eq "$n" ] || { echo "bench: tokenrun wrote $(ls "tr-$kind" | wc -l) of $n" >&2; exit 1; }

  awk -v k="$kind" -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
    tr = b - a; os = c - b
    printf "%-6s %6d %14.3f %14.3f %10.0f %10.0f %7.1fx\n", k, n, tr, os, n / tr, n / os, os / tr
  }'
done
