#!/usr/bin/env bash
# Cross-builds tokenrun from a Debian machine, one binary per target, into dist/ (or $DIST):
#
#   windows/amd64  cgo with mingw-w64 (Debian: gcc-mingw-w64-x86-64-win32): the PKCS#11
#                  backend (miekg/pkcs11) loads the token vendor's DLL with LoadLibrary
#   linux/amd64    cgo with the host's gcc (on an amd64 host)
#   linux/arm64    cgo with aarch64-linux-gnu-gcc when it is installed, else without cgo
#   darwin/amd64, darwin/arm64
#                  without cgo: there is no macOS C toolchain here. Such a build has no
#                  PKCS#11 module backend (--module fails saying why); software tokens, sign
#                  and verify, the CA and the scripts tools work. Build on a Mac for a full one.
#
# Usage: .ci/cross.sh [GOOS/GOARCH...]   (default: all of the above)
#        VERSION=1.2.3 .ci/cross.sh      stamps tokenrun's version (runtime.Version)
#        TRIMPATH=0 .ci/cross.sh         keeps build paths (release builds drop them, which
#                                        also rebuilds what a plain go build has cached)
# Prints each binary with its cgo setting, size and build time.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

dist=${DIST:-dist}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(windows/amd64 linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
fi
trim=-trimpath
[ "${TRIMPATH:-1}" = 0 ] && trim=
ldflags=""
if [ -n "${VERSION:-}" ]; then
  ldflags="-X github.com/tokenrun/tokenrun/runtime.Version=$VERSION"
fi
mkdir -p "$dist"

for target in "${targets[@]}"; do
  goos=${target%/*}
  goarch=${target#*/}
  out="$dist/tokenrun-$goos-$goarch"
  cc=""
  case "$target" in
    windows/amd64)
      out="$out.exe"
      cc=x86_64-w64-mingw32-gcc
      if ! command -v "$cc" >/dev/null; then
        echo "$target needs $cc: apt-get install gcc-mingw-w64-x86-64-win32" >&2
        exit 1
      fi ;;
    windows/*)
      echo "$target: no mingw-w64 cross compiler for it in Debian bookworm" >&2
      exit 1 ;;
    linux/*)
      host=$(go env GOHOSTARCH)
      if [ "$goarch" = "$host" ]; then
        cc=gcc
      elif [ "$goarch" = arm64 ] && command -v aarch64-linux-gnu-gcc >/dev/null; then
        cc=aarch64-linux-gnu-gcc
      else
        echo "$target: no C cross compiler (apt-get install gcc-aarch64-linux-gnu for arm64): building without cgo, so without the PKCS#11 module backend" >&2
      fi ;;
  esac
  cgo=0
  [ -n "$cc" ] && cgo=1
  start=$(date +%s%N)
  CGO_ENABLED=$cgo CC=$cc GOOS=$goos GOARCH=$goarch \
    go build $trim -ldflags "$ldflags" -o "$out" ./cmd/tokenrun
  took=$(( ($(date +%s%N) - start) / 1000000000 ))
  printf '%-14s %s (cgo=%s, %s MB, %s s)\n' "$target" "$out" "$cgo" "$(( $(stat -c %s "$out") / 1048576 ))" "$took"
done
