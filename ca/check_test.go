package ca

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckIssued(t *testing.T) {
	now := time.Now()
	pki := newTestPKI(t, now.AddDate(5, 0, 0))
	foreign := newTestPKI(t, now.AddDate(5, 0, 0))
	expiredInter := newTestPKI(t, now.Add(-time.Hour))
	key := newECKey(t)
	chain := []*x509.Certificate{pki.inter}
	yearAgo := now.Add(-time.Minute)
	cases := []struct {
		name  string
		cert  *x509.Certificate
		chain []*x509.Certificate
		roots *x509.CertPool
		want  time.Duration
		err   error
		msg   string
	}{
		{"good", pki.leaf(t, key.Public(), yearAgo, yearAgo.AddDate(1, 0, 0)), chain, pki.roots(), Year, nil, ""},
		{"good, validity not checked", pki.leaf(t, key.Public(), yearAgo, yearAgo.AddDate(0, 0, 90)), chain, pki.roots(), 0, nil, ""},
		{"three years", pki.leaf(t, key.Public(), yearAgo, yearAgo.AddDate(3, 0, 0)), chain, pki.roots(), 3 * Year, nil, ""},
		{"another key", pki.leaf(t, newECKey(t).Public(), yearAgo, yearAgo.AddDate(1, 0, 0)), chain, pki.roots(), Year,
			ErrWrongKey, "the certificate is for another key"},
		{"expired", pki.leaf(t, key.Public(), now.AddDate(-1, 0, -1), now.Add(-24*time.Hour)), chain, pki.roots(), 0,
			ErrExpired, "has expired: it was valid until"},
		{"not yet valid", pki.leaf(t, key.Public(), now.Add(2*time.Hour), now.AddDate(1, 0, 0)), chain, pki.roots(), 0,
			ErrNotYetValid, "check this computer's clock"},
		{"foreign chain", foreign.leaf(t, key.Public(), yearAgo, yearAgo.AddDate(1, 0, 0)), []*x509.Certificate{foreign.inter}, pki.roots(), Year,
			ErrUntrustedChain, "does not chain to the configured CA roots"},
		{"missing intermediate", pki.leaf(t, key.Public(), yearAgo, yearAgo.AddDate(1, 0, 0)), nil, pki.roots(), Year,
			ErrUntrustedChain, `issued by "CN=test intermediate"`},
		{"expired intermediate", expiredInter.leaf(t, key.Public(), yearAgo, yearAgo.AddDate(1, 0, 0)), []*x509.Certificate{expiredInter.inter},
			expiredInter.roots(), Year, ErrUntrustedChain, "expired"},
		{"one year instead of three", pki.leaf(t, key.Public(), yearAgo, yearAgo.AddDate(1, 0, 0)), chain, pki.roots(), 3 * Year,
			ErrValidityMismatch, "asked for 1095 days, it is valid for 365 days"},
		{"three years instead of one", pki.leaf(t, key.Public(), yearAgo, yearAgo.AddDate(3, 0, 0)), chain, pki.roots(), Year,
			ErrValidityMismatch, "check the registration type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckIssued(tc.cert, tc.chain, key.Public(), tc.roots, tc.want)
			if tc.err == nil {
				require.NoError(t, err)
				return
			}
			t.Log(err)
			require.ErrorIs(t, err, tc.err)
			assert.Contains(t, err.Error(), tc.msg)
			for _, other := range []error{ErrWrongKey, ErrExpired, ErrNotYetValid, ErrUntrustedChain, ErrValidityMismatch} {
				if other != tc.err {
					assert.NotErrorIs(t, err, other, "each failure has its own error")
				}
			}
		})
	}
}

// TestCheckIssuedLeapYears: a calendar year is 366 days across a 29 February, and three years
// can be 1096 days; both pass, while a year and a half does not.
func TestCheckIssuedLeapYears(t *testing.T) {
	pki := newTestPKI(t, time.Now().AddDate(10, 0, 0))
	key := newECKey(t)
	start := time.Now().Add(-time.Hour)
	// Shift to a date whose following year holds a 29 February.
	for !isLeap(start.AddDate(1, 0, 0).Year()) || start.Month() < time.March {
		start = start.AddDate(0, 1, 0)
	}
	leaf := pki.leaf(t, key.Public(), start, start.AddDate(1, 0, 0))
	at := start.Add(time.Hour)
	require.Equal(t, 366*24*time.Hour, leaf.NotAfter.Sub(leaf.NotBefore))
	assert.NoError(t, checkIssuedAt(at, leaf, []*x509.Certificate{pki.inter}, key.Public(), pki.roots(), Year))
	leaf3 := pki.leaf(t, key.Public(), start, start.AddDate(3, 0, 0))
	assert.NoError(t, checkIssuedAt(at, leaf3, []*x509.Certificate{pki.inter}, key.Public(), pki.roots(), 3*Year))
	half := pki.leaf(t, key.Public(), start, start.AddDate(1, 6, 0))
	assert.ErrorIs(t, checkIssuedAt(at, half, []*x509.Certificate{pki.inter}, key.Public(), pki.roots(), Year), ErrValidityMismatch)
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func TestCheckIssuedArguments(t *testing.T) {
	pki := newTestPKI(t, time.Now().AddDate(1, 0, 0))
	key := newECKey(t)
	leaf := pki.leaf(t, key.Public(), time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	assert.ErrorContains(t, CheckIssued(nil, nil, key.Public(), pki.roots(), 0), "no certificate")
	assert.ErrorContains(t, CheckIssued(leaf, nil, nil, pki.roots(), 0), "no expected public key")
	assert.ErrorContains(t, CheckIssued(leaf, nil, key.Public(), nil, 0), "the system's are never assumed")
}
