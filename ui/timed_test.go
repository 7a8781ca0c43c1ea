package ui

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A question nobody answers ends after the limit as cancelled; an answer in time is
// returned, and a person's PIN is still known as a person's to the witness over it.
func TestTimed(t *testing.T) {
	inR, inW := io.Pipe()
	defer inW.Close()
	var out syncBuffer
	fe := NewTimed(NewJSON(inR, &out), 50*time.Millisecond)
	start := time.Now()
	_, err := fe.Ask(context.Background(), Prompt{ID: "sign_confirm", Kind: Confirm})
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrCancelled), "%v", err)
	assert.Contains(t, err.Error(), "no answer within 50ms")
	assert.Less(t, time.Since(start), 5*time.Second)

	w := NewWitness(NewTimed(NewJSON(strings.NewReader(`{"id":"current_pin","value":"Kx7mQ9pz","person":true}`+"\n"), io.Discard), time.Minute))
	v, err := w.Ask(context.Background(), Prompt{ID: "current_pin", Kind: Secret})
	require.NoError(t, err)
	assert.Equal(t, "Kx7mQ9pz", v)
	assert.True(t, w.TypedByPerson("Kx7mQ9pz"), "the person mark goes through the time limit")
	_, ok := Find[Lifecycle](fe)
	assert.True(t, ok, "the JSON front-end's lifecycle is found through it")
}
