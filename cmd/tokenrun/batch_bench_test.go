package main

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/batch"
	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
)

// BenchmarkBatch is bench/batch: a batch of BATCH_ROWS (100) rows on SoftHSM2 against the
// dev CA on loopback, EC P-256 and RSA-2048, sequential and --parallel 4, all tokens present
// (set up outside the timer). One batch per iteration: run it with -benchtime 1x. Reported:
// rows/s, and the per-row overhead beyond key generation and the CA step as a share of the
// row's time (the report's duration_s minus keygen_s and ca_s).
func BenchmarkBatch(b *testing.B) {
	rows := 100
	if testing.Short() {
		rows = 10
	}
	for _, kt := range []struct{ name, typ, param string }{
		{"ecp256", "ec", "key.curve=P-256"},
		{"rsa2048", "rsa", "key.bits=2048"},
	} {
		for _, par := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/parallel%d", kt.name, par), func(b *testing.B) {
				var rowsPerSec, overhead, keygen, ca, row, calls float64
				var mu sync.Mutex
				byName := map[string]time.Duration{}
				batchCallTimes = func(name string, d time.Duration) {
					mu.Lock()
					byName[name] += d
					mu.Unlock()
				}
				defer func() { batchCallTimes = nil }()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					e := newBatchEnv(b, rows)
					e.key = []string{"--set", "key.type=" + kt.typ, "--set", kt.param}
					e.ca.Start(devca.ServerOptions{})
					b.Cleanup(e.ca.Stop)
					module := p11test.SoftHSM(b)
					for k := 0; k < rows; k++ {
						p11test.SoftHSMToken(b, fmt.Sprintf("B%03d", k), "87654321", "12345678")
					}
					args := e.args("--module", module, "--parallel", fmt.Sprint(par), "--idle", "30s")
					b.StartTimer()
					start := time.Now()
					r := tokenrun(b, "", args...)
					wall := time.Since(start)
					b.StopTimer()
					require.Equal(b, runner.ExitOK, r.code, r.err)
					rs := readBatchReport(b, e.report)
					require.Len(b, rs, rows)
					var sum, kg, cs float64
					for _, res := range rs {
						require.Equal(b, batch.Enrolled, res.Outcome)
						sum += res.Seconds
						kg += res.KeygenSeconds
						cs += res.CASeconds
					}
					var all time.Duration
					for _, d := range byName {
						all += d
					}
					calls += all.Seconds() / sum * 100
					if os.Getenv("BATCH_CALLS") != "" {
						for name, d := range byName {
							b.Logf("%-32s %8.1f ms/row", name, d.Seconds()*1000/float64(rows))
						}
					}
					clear(byName)
					rowsPerSec += float64(rows) / wall.Seconds()
					overhead += (sum - kg - cs) / sum * 100
					keygen += kg / float64(rows) * 1000
					ca += cs / float64(rows) * 1000
					row += sum / float64(rows) * 1000
				}
				n := float64(b.N)
				b.ReportMetric(rowsPerSec/n, "rows/s")
				b.ReportMetric(row/n, "row-ms")
				b.ReportMetric(keygen/n, "keygen-ms")
				b.ReportMetric(ca/n, "ca-ms")
				b.ReportMetric(overhead/n, "overhead-%")
				b.ReportMetric(100-calls/n, "host-%")
			})
		}
	}
}
