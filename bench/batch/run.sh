#!/usr/bin/env bash
# bench/batch: 100 rows of `tokenrun batch enroll` on SoftHSM2 against the dev CA on loopback,
# EC P-256 and RSA-2048, sequential and --parallel 4. Prints rows/s, the mean row, its key
# generation and CA step, and the per-row overhead beyond those two as a share of the row.
# Needs SoftHSM2 (softhsm2-util). ROWS=10 for a quick look (go test -short).
set -euo pipefail
cd "$(dirname "$0")/../.."
short=()
if [[ "${ROWS:-100}" != 100 ]]; then short=(-short); fi
go test ./cmd/tokenrun -run '^$' -bench '^BenchmarkBatch$' -benchtime 1x -timeout 60m "${short[@]}" | grep -E 'Benchmark|ok'
