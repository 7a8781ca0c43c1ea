package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	bindpolicy "github.com/tokenrun/tokenrun/bindings/policy"
	"github.com/tokenrun/tokenrun/ca/devca"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/ui"
)

// BenchmarkEnroll is a full non-interactive enrollment with the shipped enroll procedure on
// SoftHSM2 against the development CA on loopback: a new token each iteration (set up
// outside the timer), the answers a bank's batch file gives. Besides the wall time it
// reports where the time went, from the call observer:
//   - keygen-ms: tok:generate_key on the token;
//   - ca-ms: ca.enroll, the EST round trip and the CA's signing;
//   - other-binding-ms: every other call into Go (login, set_pin, CSR signing, storing...);
//   - runtime-%: what is left, the Lua host itself (sandbox, script, conversions), as a share
//     of the wall time: the target is under 10 %.
func BenchmarkEnroll(b *testing.B) {
	for _, kt := range []struct{ name, typ, param string }{
		{"rsa2048", "rsa", "key.bits=2048"},
		{"ecp256", "ec", "key.curve=P-256"},
	} {
		b.Run(kt.name, func(b *testing.B) {
			dir, url, keyFile := devCA(b, devca.ServerOptions{})
			set, err := scripts.Embedded()
			require.NoError(b, err)
			r, err := region.Load(set.FS, "default")
			require.NoError(b, err)
			require.NoError(b, r.Set("ca.url="+url, "ca.roots="+filepath.Join(dir, devca.RootCertFile), "key.type="+kt.typ, kt.param))
			cat, err := r.Catalog("en")
			require.NoError(b, err)
			cfg := r.Map()
			cfg["language"], cfg["messages"] = "en", cat
			store, err := journal.Open(b.TempDir())
			require.NoError(b, err)
			p11test.SoftHSM(b)
			answers := map[string]string{
				"validity": "1y", "user_id": userID, "otp_pin": otpPIN, "key_file": keyFile, "pin_is_password": "true",
				"profile_name": "Bench", "new_pin": "Kz7mWq9x", "new_pin_confirm": "Kz7mWq9x", "confirm": "yes",
			}
			var walls []time.Duration
			var keygen, caWork, other, wall time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				tk := p11test.SoftHSMToken(b, fmt.Sprintf("B%d", i), "87654321", "12345678")
				prov, err := pkcs11.Open(tk.Module)
				require.NoError(b, err)
				var inside [3]time.Duration
				obs := runtime.ObserverFunc(func(e runtime.CallEvent) {
					if e.Depth > 0 {
						return
					}
					switch e.Name() {
					case "token.Token:generate_key":
						inside[0] += e.Duration
					case "ca.enroll":
						inside[1] += e.Duration
					default:
						inside[2] += e.Duration
					}
				})
				spec := runner.Spec{
					Script: set.Procedures["enroll"], Libraries: set.Libraries, Provider: prov, URI: &token.URI{Token: tk.Label},
					Frontend: ui.NewAnswers(answers, ui.AnswersOptions{AllowConfirm: true}), Config: cfg, Journal: store,
					Extra: []runtime.Module{bindpolicy.Module(r, cat)}, Observer: obs,
				}
				b.StartTimer()
				start := time.Now()
				_, err = runner.Run(context.Background(), spec)
				d := time.Since(start)
				b.StopTimer()
				require.NoError(b, err)
				require.NoError(b, prov.Close())
				walls = append(walls, d)
				wall += d
				keygen += inside[0]
				caWork += inside[1]
				other += inside[2]
				b.StartTimer()
			}
			b.StopTimer()
			sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
			n := float64(b.N)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
			b.ReportMetric(float64(walls[len(walls)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(ms(keygen), "keygen-ms")
			b.ReportMetric(ms(caWork), "ca-ms")
			b.ReportMetric(ms(other), "other-binding-ms")
			b.ReportMetric(100*float64(wall-keygen-caWork-other)/float64(wall), "runtime-%")
		})
	}
}
