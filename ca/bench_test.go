package ca

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tokenrun/tokenrun/ca/devca"
)

// BenchmarkEnrollRoundTrip is one simpleenroll against the development CA on loopback: the
// request is made beforehand (no key generation, no CSR signing), so what is measured is TLS,
// HTTP, the CA's checks, signing, the fsync'd issuance log and the client's decoding. The
// target is under 50 ms. "p50-ms" is the median of the iterations, steadier than the mean.
func BenchmarkEnrollRoundTrip(b *testing.B) {
	d := newDevCA(b)
	url := d.serve(b, devca.ServerOptions{})
	csr := csrFor(b, newECKey(b), testUser)
	ctx := context.Background()
	cfg := ClientConfig{URL: url, Roots: d.ca.RootPool(), Identity: d.initial}

	run := func(b *testing.B, enroll func() error) {
		var times []time.Duration
		for b.Loop() {
			start := time.Now()
			if err := enroll(); err != nil {
				b.Fatal(err)
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	}
	b.Run("kept-alive connection", func(b *testing.B) {
		c := newClient(b, cfg)
		run(b, func() error { _, err := c.Enroll(ctx, csr); return err })
	})
	b.Run("new TLS connection each time", func(b *testing.B) {
		run(b, func() error {
			c, err := NewClient(cfg)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Enroll(ctx, csr)
			return err
		})
	})
}
