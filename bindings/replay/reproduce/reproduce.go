// Package reproduce sets up the software tokens of `tokenrun replay --soft`: one per token a
// transcript records, in the client's recorded starting state, for a live replay
// (replay.Live) on a real token module. It runs no Lua.
package reproduce

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tokenrun/tokenrun/bindings/replay"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/soft"
	"github.com/tokenrun/tokenrun/transcript"
	"github.com/tokenrun/tokenrun/ui"
)

// Reproduction is the software token (one per recorded token) that replay --soft sets up
// in a client's recorded starting state: the label, serial, manufacturer and model the
// client's token showed, its PIN tries and flags, and its profile (keys with the same ids,
// labels and types; certificates re-issued for them by a replay.StandIn). The client's
// secrets are not in the record: support chooses the reproduction's PINs.
type Reproduction struct {
	Targets  []string // the token directories support gets: dir itself for one token
	pristine []string // the tokens as set up, copied over Targets before each replay
	work     string   // temporary directory holding pristine
	StandIn  *replay.StandIn
	Notes    []string // where the reproduction is not exact, said to support
}

// Close removes the set-up copies; the targets stay, as the replay left them.
func (r *Reproduction) Close() error { return os.RemoveAll(r.work) }

// Reset puts every target back in the starting state: a replay that guesses secrets
// (replay.Search) runs several times, and each must start from the client's state.
func (r *Reproduction) Reset() error {
	for i, t := range r.Targets {
		if err := os.RemoveAll(t); err != nil {
			return fmt.Errorf("reproduction token %s: %w", t, err)
		}
		if err := copyFiles(r.pristine[i], t); err != nil {
			return fmt.Errorf("reproduction token %s: %w", t, err)
		}
	}
	return nil
}

// Provider opens the targets.
func (r *Reproduction) Provider() (*soft.Provider, error) {
	return soft.Open(soft.Options{}, r.Targets...)
}

// Reproduction PIN prompt ids, the keys of an answers file.
const (
	UserPINID = "reproduction_user_pin"
	SOPINID   = "reproduction_so_pin"
)

// Setup makes the reproduction tokens of rec under dir, which must be empty or
// missing: a replay never overwrites a token.
// maxTries is how many tries the client's token allows before it locks: modules that give
// flags only do not say, so support may (--max-tries).
func Setup(ctx context.Context, dir string, rec *replay.Record, cfg map[string]any, fe ui.Frontend, maxTries int) (*Reproduction, error) {
	h := rec.Header
	if maxTries < 1 {
		return nil, runner.UsageError{Err: fmt.Errorf("--max-tries %d: want a number of tries, 1 or more", maxTries)}
	}
	if err := checkEmptyDir(dir); err != nil {
		return nil, runner.UsageError{Err: fmt.Errorf("replay --soft %s: %w", dir, err)}
	}
	// An uninitialised token (SoftHSM2's spare slot, a token never set up) holds nothing
	// and is not counted when a procedure picks its token; a software token cannot be one.
	var toks []transcript.Token
	var notes []string
	for _, t := range h.Tokens {
		if t.Initialized {
			toks = append(toks, t)
		} else {
			notes = append(notes, fmt.Sprintf("an uninitialised token (%s %s) was present too; it is not reproduced", t.Manufacturer, t.Model))
		}
	}
	if len(toks) == 0 {
		return nil, runner.UsageError{Err: errors.New("replay --soft: the transcript records no initialised token present when the run started: replay it without --soft")}
	}
	userPIN, soPIN, err := reproductionPINs(ctx, cfg, fe)
	if err != nil {
		return nil, err
	}
	si, err := replay.NewStandIn()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "tokenrun-replay-")
	if err != nil {
		return nil, err
	}
	r := &Reproduction{work: work, StandIn: si, Notes: notes}
	seen := rec.StartKeys()
	if len(toks) > 1 && len(seen) > 0 {
		r.Notes = append(r.Notes, "several tokens were present: the keys the script listed are not reproduced (the record does not say on which token they were)")
		seen = nil
	}
	for i, t := range toks {
		sub := filepath.Join(work, strconv.Itoa(i+1))
		if err := r.build(ctx, sub, t, seen, userPIN, soPIN, maxTries); err != nil {
			r.Close()
			return nil, err
		}
		r.pristine = append(r.pristine, sub)
		if len(toks) == 1 {
			r.Targets = append(r.Targets, dir)
		} else {
			r.Targets = append(r.Targets, filepath.Join(dir, strconv.Itoa(i+1)))
		}
	}
	return r, nil
}

// reproductionPINs asks support for the PINs to give the reproduction tokens; empty
// answers take the region's default PINs.
func reproductionPINs(ctx context.Context, cfg map[string]any, fe ui.Frontend) (user, so string, err error) {
	tok, _ := cfg["token"].(map[string]any)
	help := "The reproduction token is a software token set up as the client's was; the client's passwords are not in the transcript."
	ask := func(id, label, key string) (string, error) {
		v, err := fe.Ask(ctx, ui.Prompt{ID: id, Kind: ui.Secret, Optional: true, Label: label, Help: help})
		help = "" // said once
		if err != nil {
			return "", fmt.Errorf("replay --soft: %w", err)
		}
		if v == "" {
			v, _ = tok[key].(string)
		}
		if v == "" {
			return "", runner.UsageError{Err: fmt.Errorf("replay --soft: %s: the region has no default password; give one", id)}
		}
		return v, nil
	}
	if user, err = ask(UserPINID, "User password for the reproduction token (empty: the region's default)", "default_user_pin"); err != nil {
		return "", "", err
	}
	if so, err = ask(SOPINID, "Administrator (SO) password for the reproduction token (empty: the region's default)", "default_so_pin"); err != nil {
		return "", "", err
	}
	return user, so, nil
}

// build makes one reproduction token in sub.
func (r *Reproduction) build(ctx context.Context, sub string, t transcript.Token, seen []map[string]any, userPIN, soPIN string, maxTries int) error {
	userMax, soMax := max(maxTries, t.UserPIN.RetriesLeft), max(maxTries, t.SOPIN.RetriesLeft)
	opts := soft.Options{Label: t.Label, Serial: t.Serial, Manufacturer: t.Manufacturer, Model: t.Model,
		DefaultUserPIN: userPIN, DefaultSOPIN: soPIN, MinPINLen: t.MinPINLen, MaxPINLen: t.MaxPINLen,
		UserMaxTries: userMax, SOMaxTries: soMax,
		UserPINToBeChanged: t.UserPIN.ToBeChanged, SOPINToBeChanged: t.SOPIN.ToBeChanged,
		// A module that gave flags only: so does the reproduction, or a script reading the
		// count would take another path than it did for the client.
		FlagsOnly: t.UserPIN.RetriesLeft < 0 && t.SOPIN.RetriesLeft < 0}
	if err := soft.Create(sub, opts); err != nil {
		return runner.UsageError{Err: fmt.Errorf("replay --soft: the reproduction of token %q: %w", t.Label, err)}
	}
	p, err := soft.Open(soft.Options{}, sub)
	if err != nil {
		return err
	}
	defer p.Close()
	infos, err := p.Tokens(ctx)
	if err != nil {
		return err
	}
	tok, err := p.Open(ctx, infos[0])
	if err != nil {
		return err
	}
	defer tok.Close()
	if t.UserPINSet {
		if err := r.profile(ctx, tok, t, seen, userPIN); err != nil {
			return err
		}
	} else {
		if len(t.Certificates) > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("token %q had certificates but no user password; a software token holds none then", t.Label))
		}
		// A token whose user PIN is not set is a formatted one.
		if err := tok.Login(ctx, token.SO, soPIN); err != nil {
			return err
		}
		if err := tok.Format(ctx, soPIN, t.Label); err != nil {
			return err
		}
	}
	// Last: the logins above reset the counters.
	for _, role := range []struct {
		role token.Role
		st   token.PINStatus
		max  int
	}{{token.User, t.UserPIN, userMax}, {token.SO, t.SOPIN, soMax}} {
		left := r.triesLeft(t.Label, role.role, role.st, role.max)
		if err := soft.SetTries(sub, role.role, left); err != nil {
			return err
		}
	}
	return nil
}

// triesLeft is what the reproduction's counter starts at: exact when the client's module
// said, else read from the flags.
func (r *Reproduction) triesLeft(label string, role token.Role, st token.PINStatus, maxTries int) int {
	switch {
	case st.RetriesLeft >= 0:
		return st.RetriesLeft
	case st.Locked:
		return 0
	case st.FinalTry:
		return 1
	case st.CountLow:
		r.Notes = append(r.Notes, fmt.Sprintf("token %q: the client's module said only that %s password tries were lost; the reproduction has %d of %d left (--max-tries sets how many the client's token allows)",
			label, role, maxTries-1, maxTries))
		return maxTries - 1
	}
	return maxTries
}

// profile puts the client's keys and certificates on the reproduction: a new key for each
// key the script listed and for each certificate of an end entity, with the recorded id
// and label, and each certificate re-issued for its new key.
func (r *Reproduction) profile(ctx context.Context, tok token.Token, t transcript.Token, seen []map[string]any, userPIN string) error {
	if len(seen) == 0 && len(t.Certificates) == 0 {
		return nil
	}
	if err := tok.Login(ctx, token.User, userPIN); err != nil {
		return err
	}
	defer tok.Logout(ctx)
	keys := map[string]crypto.PublicKey{} // id hex -> the new key
	add := func(idHex, label string, req token.KeyRequest, spki []byte) error {
		if _, ok := keys[idHex]; ok {
			return nil
		}
		id, err := hex.DecodeString(idHex)
		if err != nil || len(id) == 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("a key with id %q is not reproduced: not a hex id", idHex))
			return nil
		}
		req.ID, req.Label = id, label
		k, err := tok.GenerateKey(ctx, req)
		if err != nil {
			return fmt.Errorf("replay --soft: the reproduction of key %s (%s): %w", idHex, label, err)
		}
		keys[idHex] = k.Public
		if spki != nil {
			r.StandIn.Map(spki, k.Public)
		}
		return nil
	}
	for _, f := range seen {
		idHex, _ := f["id"].(string)
		label, _ := f["label"].(string)
		typ, _ := f["type"].(string)
		bits, _ := f["bits"].(float64)
		curve, _ := f["curve"].(string)
		if token.KeyType(typ) == token.Vendor || typ == "" {
			r.Notes = append(r.Notes, fmt.Sprintf("key %s (%s) is a vendor key: not reproduced", idHex, label))
			continue
		}
		var spki []byte
		if pk, _ := f["public_key"].(string); pk != "" {
			if b, _ := pem.Decode([]byte(pk)); b != nil {
				spki = b.Bytes
			}
		}
		if err := add(idHex, label, token.KeyRequest{Type: token.KeyType(typ), Bits: int(bits), Curve: curve}, spki); err != nil {
			return err
		}
	}
	for _, o := range t.Certificates {
		c, err := x509.ParseCertificate(o.DER)
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("certificate %s (%s) is not reproduced: %v", o.ID, o.Label, err))
			continue
		}
		if _, ok := keys[o.ID]; !ok && !c.IsCA {
			if req, ok := keyRequestFor(c.PublicKey); ok {
				if err := add(o.ID, o.Label, req, c.RawSubjectPublicKeyInfo); err != nil {
					return err
				}
			} else {
				r.Notes = append(r.Notes, fmt.Sprintf("certificate %s (%s): its key type cannot be reproduced; stored as it was", o.ID, o.Label))
			}
		}
		der := o.DER
		if pub, ok := keys[o.ID]; ok {
			if der, err = r.StandIn.Reissue(c, pub); err != nil {
				return err
			}
		}
		id, _ := hex.DecodeString(o.ID)
		if _, err := tok.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: id, Label: o.Label}); err != nil {
			return fmt.Errorf("replay --soft: the reproduction of certificate %s (%s): %w", o.ID, o.Label, err)
		}
	}
	return nil
}

// keyRequestFor asks for a key of the type and size of pub.
func keyRequestFor(pub crypto.PublicKey) (token.KeyRequest, bool) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return token.KeyRequest{Type: token.RSA, Bits: k.N.BitLen()}, true
	case *ecdsa.PublicKey:
		return token.KeyRequest{Type: token.EC, Curve: k.Curve.Params().Name}, true
	case ed25519.PublicKey:
		return token.KeyRequest{Type: token.Ed25519}, true
	}
	return token.KeyRequest{}, false
}

// checkEmptyDir accepts a missing or empty directory.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(entries) > 0:
		return errors.New("the directory is not empty; give a new or empty one (a replay never overwrites a token)")
	}
	return nil
}

// copyFiles copies the regular files of from into a new directory to. Not os.CopyFS: it
// creates files 0666 less the umask, and a token's state (PIN verifiers, sealed keys) is
// kept 0600 by the software token.
func copyFiles(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := readfile.Open(from, readfile.SoftState)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// AskSupport asks support, through the replay's front-end, for a fresh secret.
func AskSupport(ctx context.Context, fe ui.Frontend) func(replay.SecretRequest) (string, error) {
	return func(req replay.SecretRequest) (string, error) {
		label := req.Label
		if label == "" {
			label = req.ID
		}
		p := ui.Prompt{ID: req.ID, Kind: ui.Secret,
			Label: fmt.Sprintf("Stand-in for the client's answer to %q", strings.TrimSpace(label)),
			Help: fmt.Sprintf("At step %d (%s) the client's token %s. Type what does the same on the reproduction token.",
				req.Step, req.Call, req.Recorded)}
		v, err := fe.Ask(ctx, p)
		if err != nil {
			return "", fmt.Errorf("a stand-in for %s: %w", req.ID, err)
		}
		return v, nil
	}
}
