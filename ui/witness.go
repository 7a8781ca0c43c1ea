package ui

import (
	"context"
	"crypto/sha256"
	"sync"
)

// sourced is implemented by the front-ends that know whether an answer was typed by a
// person: the terminal (when it is one), the JSON driver (when its answer line says so).
type sourced interface {
	askSourced(ctx context.Context, p Prompt) (answer string, byPerson bool, err error)
}

// Witness is a front-end that remembers which secrets a person typed in this run. The host's
// safety floor asks it before a login that may spend a last PIN try: only a PIN a person
// typed may spend it, never one from an answers file, a pipe, a configuration default or a
// driver that does not say a person typed it. Only digests are kept.
type Witness struct {
	Frontend
	mu    sync.Mutex
	typed map[[32]byte]bool
}

// NewWitness wraps fe, the front-end as the command built it (not a wrapper of it: only the
// front-end itself knows where its answers came from).
func NewWitness(fe Frontend) *Witness { return &Witness{Frontend: fe, typed: map[[32]byte]bool{}} }

// Unwrap is the front-end w wraps.
func (w *Witness) Unwrap() Frontend { return w.Frontend }

// Ask asks fe, noting a secret answer a person typed.
func (w *Witness) Ask(ctx context.Context, p Prompt) (string, error) {
	s, ok := w.Frontend.(sourced)
	if !ok || p.Kind != Secret {
		return w.Frontend.Ask(ctx, p)
	}
	v, byPerson, err := s.askSourced(ctx, p)
	if err == nil && byPerson && v != "" {
		w.mu.Lock()
		w.typed[sha256.Sum256([]byte(v))] = true
		w.mu.Unlock()
	}
	return v, err
}

// TypedByPerson reports whether a person typed secret at a prompt of this run.
func (w *Witness) TypedByPerson(secret string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.typed[sha256.Sum256([]byte(secret))]
}
