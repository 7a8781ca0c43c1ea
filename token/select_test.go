package token

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listProvider is a Provider whose present tokens a test changes over time. Only Tokens is
// used by selection.
type listProvider struct {
	Provider
	calls  atomic.Int32
	tokens func(call int) []Info
}

func (p *listProvider) Tokens(context.Context) ([]Info, error) {
	return p.tokens(int(p.calls.Add(1))), nil
}

func fixed(infos ...Info) *listProvider {
	return &listProvider{tokens: func(int) []Info { return infos }}
}

var (
	alpha = Info{Label: "ALPHA", Serial: "1", Initialized: true}
	beta  = Info{Label: "BETA", Serial: "2", Initialized: true}
	spare = Info{Label: "", Serial: "3", Initialized: false}
)

func TestSelectOne(t *testing.T) {
	tests := []struct {
		name    string
		p       *listProvider
		opts    SelectOptions
		want    Info
		wantErr error
		msg     string
	}{
		{name: "one", p: fixed(alpha), want: alpha},
		{name: "uninitialised spare slot not counted", p: fixed(alpha, spare), want: alpha},
		{name: "none", p: fixed(), wantErr: ErrTokenNotPresent, msg: "plug in the token"},
		{name: "only uninitialised", p: fixed(spare), wantErr: ErrTokenNotPresent, msg: "1 uninitialised token(s) present"},
		{name: "uninitialised counted on request", p: fixed(spare), opts: SelectOptions{IncludeUninitialized: true}, want: spare},
		{name: "several refused and named", p: fixed(alpha, beta), wantErr: ErrSeveralTokens, msg: "ALPHA (serial 1), BETA (serial 2)"},
		{name: "URI narrows", p: fixed(alpha, beta), opts: SelectOptions{URI: &URI{Serial: "2"}}, want: beta},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Select(context.Background(), tt.p, tt.opts)
			require.NoError(t, err)
			got, err := s.One()
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Contains(t, err.Error(), tt.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestWaitForInsertion(t *testing.T) {
	// The token appears on the third look.
	p := &listProvider{tokens: func(call int) []Info {
		if call < 3 {
			return nil
		}
		return []Info{alpha}
	}}
	got, err := Wait(context.Background(), p, WaitOptions{Timeout: 5 * time.Second, Poll: time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, alpha, got)
	assert.Equal(t, int32(3), p.calls.Load())
}

func TestWaitTimesOut(t *testing.T) {
	var waited []time.Duration
	_, err := Wait(context.Background(), fixed(), WaitOptions{Timeout: 20 * time.Millisecond, Poll: time.Millisecond,
		Waiting: func(d time.Duration) { waited = append(waited, d) }})
	require.ErrorIs(t, err, ErrTokenNotPresent)
	require.NotEmpty(t, waited, "every look that found nothing is told")
	assert.LessOrEqual(t, waited[0], waited[len(waited)-1])
	assert.Contains(t, err.Error(), "waited 20ms")
}

func TestWaitRefusesSeveralAtOnce(t *testing.T) {
	p := fixed(alpha, beta)
	_, err := Wait(context.Background(), p, WaitOptions{Timeout: time.Hour, Poll: time.Millisecond})
	var several *SeveralTokensError
	require.True(t, errors.As(err, &several))
	assert.Len(t, several.Tokens, 2)
	assert.Equal(t, int32(1), p.calls.Load(), "several tokens: no point waiting")
}

func TestErrorCarriesCode(t *testing.T) {
	err := error(NewError("login", CKR_PIN_LOCKED))
	assert.ErrorIs(t, err, ErrPINLocked)
	assert.Equal(t, "login: PIN locked (CKR_PIN_LOCKED)", err.Error())
	var te *Error
	require.True(t, errors.As(err, &te))
	assert.Equal(t, CKR_PIN_LOCKED, te.Code)
	assert.Equal(t, "CKR_0xFFFF", ReturnCode(0xffff).String())
}

// slowProvider's look takes as long as its context lets it, as a busy module's can.
type slowProvider struct{ Provider }

func (slowProvider) Tokens(ctx context.Context) ([]Info, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestWaitRunsOutDuringALook: the wait's own time running out while a look is still going is
// "no token came", not the caller's timeout; the caller's context ending stays its own.
func TestWaitRunsOutDuringALook(t *testing.T) {
	_, err := Wait(context.Background(), slowProvider{}, WaitOptions{Timeout: 20 * time.Millisecond})
	require.ErrorIs(t, err, ErrTokenNotPresent)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err = Wait(ctx, slowProvider{}, WaitOptions{Timeout: time.Minute})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
