package replay

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	lua "github.com/yuin/gopher-lua"

	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/transcript"
)

// Live makes some modules real in a replay (tokenrun replay --soft): their calls run, on a
// reproduction token set up in the client's starting state, while every other module still
// gives back what the record holds (the CA, the person's answers, the journal, the region's
// rules). Every call is still checked against the record in order; a real call's outcome
// is checked too, so a reproduction token that answers otherwise than the client's did
// (accepts a password the client's refused, has tries left where it had none) is the
// divergence reported.
//
// Comparison is loose where a reproduction cannot be exact (Loose): the client's keys and
// certificates are replaced by new keys and stand-in certificates, so their bytes differ
// while their ids, labels, subjects, serials and dates do not; an error is compared by
// code (and tries left, when the record knows them), not by message; the reproduction may
// say more than the client's module did (exact tries left where it gave only flags).
//
// A secret the client typed is not in the record: where one reaches a real call, Ask
// gets a fresh one from support, told what the client's token did with it, so that
// support can type one that does the same on the reproduction token. Each is asked once.
// A key the record shows generated is generated with the recorded id, so that the calls
// after it (the journal, the certificate stored under that id) match the record.
type Live struct {
	// Modules are the real modules (in tokenrun, the token module on the reproduction).
	// Set them before every replay: each replay starts from a fresh reproduction.
	Modules []runtime.Module
	// Ask gets a fresh secret from support. An error stops the replay with that error.
	Ask func(SecretRequest) (string, error)
	// StandIn re-issues the client's certificates for the reproduction's keys. It learns
	// which new key stands for which of the client's from every key a real call gives
	// back; a certificate a replayed call gives back (ca.enroll) is then its stand-in.
	StandIn *StandIn

	answers map[uint64]string // fresh secrets by the seq of the call that gave the marker
}

// SecretRequest is a fresh secret wanted for a reproduction.
type SecretRequest struct {
	// ID is the id of the prompt the client answered ("current_pin"), or "step_N" for a
	// secret a call gave back (policy.otp_pin's normalised PIN).
	ID string
	// Label is the question the client saw, or what gave the secret.
	Label string
	// Step and Call are the real call that needs it; Recorded what the client's token did
	// with the client's secret there ("accepted it", "refused it: PIN_INCORRECT ...").
	Step     uint64
	Call     string
	Recorded string
}

// SetLive puts the player in live mode; call it before Modules.
func (p *Player) SetLive(l *Live) {
	if l.answers == nil {
		l.answers = map[uint64]string{}
	}
	p.live = l
}

// liveModule wraps a real module's functions and methods so that each takes its turn in
// the record before running.
func (p *Player) liveModule(m runtime.Module) runtime.Module {
	out := m
	out.Funcs, out.Types = nil, nil
	for _, f := range m.Funcs {
		out.Funcs = append(out.Funcs, p.liveTwin(f, m.Name+"."+f.Name))
	}
	for _, t := range m.Types {
		lt := t
		lt.Methods = nil
		for _, f := range t.Methods {
			lt.Methods = append(lt.Methods, p.liveTwin(f, t.Name+":"+f.Name))
		}
		out.Types = append(out.Types, lt)
	}
	return out
}

func (p *Player) liveTwin(f runtime.Func, name string) runtime.Func {
	real := f.Fn
	f.Fn = func(L *lua.LState) int {
		c := p.take(L, name)
		p.curLive = true
		fresh, err := p.fillSecrets(L, c)
		if err != nil {
			p.abort = err
			L.RaiseError("replay stopped: %v", err)
		}
		p.keepKeyID(L, c)
		// The runtime cuts the secrets it saw from a raised error; the fresh ones were put
		// in after it looked, so they are cut here.
		defer func() {
			if r := recover(); r != nil {
				if ae, ok := r.(*lua.ApiError); ok {
					if s, ok := ae.Object.(lua.LString); ok {
						ae.Object = lua.LString(scrub(string(s), fresh))
					}
				}
				panic(r)
			}
		}()
		return real(L)
	}
	return f
}

func scrub(s string, secrets []string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, runtime.Redacted)
		}
	}
	return s
}

// fillSecrets replaces the markers given for recorded secrets, in the arguments of a real
// call (or one level down, in an options table), by fresh secrets from support.
func (p *Player) fillSecrets(L *lua.LState, c *transcript.Call) ([]string, error) {
	var fresh []string
	get := func(v lua.LValue) (lua.LString, bool, error) {
		s, ok := v.(lua.LString)
		if !ok {
			return "", false, nil
		}
		seq, ok := p.issued[string(s)]
		if !ok {
			return "", false, nil
		}
		x, err := p.freshSecret(seq, c)
		if err != nil {
			return "", false, err
		}
		fresh = append(fresh, x)
		return lua.LString(x), true, nil
	}
	for i := 1; i <= L.GetTop(); i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			x, ok, err := get(v)
			if err != nil {
				return nil, err
			}
			if ok {
				L.Replace(i, x)
			}
		case *lua.LTable:
			var cp *lua.LTable
			var ferr error
			v.ForEach(func(k, x lua.LValue) {
				s, ok, err := get(x)
				if err != nil && ferr == nil {
					ferr = err
				}
				if ok {
					if cp == nil {
						cp = copyTable(L, v)
					}
					cp.RawSet(k, s)
				}
			})
			if ferr != nil {
				return nil, ferr
			}
			if cp != nil {
				L.Replace(i, cp) // the script's own table keeps its marker
			}
		}
	}
	return fresh, nil
}

func copyTable(L *lua.LState, t *lua.LTable) *lua.LTable {
	cp := L.NewTable()
	t.ForEach(func(k, v lua.LValue) { cp.RawSet(k, v) })
	cp.Metatable = t.Metatable
	return cp
}

// freshSecret asks support, once, for the secret recorded at seq.
func (p *Player) freshSecret(seq uint64, at *transcript.Call) (string, error) {
	if s, ok := p.live.answers[seq]; ok {
		return s, nil
	}
	req := SecretRequest{ID: fmt.Sprintf("step_%d", seq), Step: at.Seq, Call: at.Name, Recorded: recordedOutcome(at)}
	if origin := p.callAt(seq); origin != nil {
		req.Label = fmt.Sprintf("the secret %s gave back at step %d", origin.Name, seq)
		if origin.Prompt != nil && origin.Prompt.ID != "" {
			req.ID = origin.Prompt.ID
			if len(origin.Args) > 0 {
				if opts, ok := origin.Args[0].(map[string]any); ok {
					if l, ok := opts["label"].(string); ok && l != "" {
						req.Label = l
					}
				}
			}
		}
	}
	s, err := p.live.Ask(req)
	if err != nil {
		return "", err
	}
	p.live.answers[seq] = s
	return s, nil
}

func (p *Player) callAt(seq uint64) *transcript.Call {
	for i := range p.rec.Calls {
		if p.rec.Calls[i].Seq == seq {
			return &p.rec.Calls[i]
		}
	}
	return nil
}

// recordedOutcome says what a recorded call did: "accepted it", "refused it: CODE (N
// tries left)", or "raised an error: ...".
func recordedOutcome(c *transcript.Call) string {
	if c.Error != "" {
		return "raised an error: " + c.Error
	}
	if code, left, ok := errResult(c.Results); ok {
		s := "refused it: " + code
		if left >= 0 {
			s += fmt.Sprintf(" (%d tries left)", left)
		}
		return s
	}
	return "accepted it"
}

// errResult reads the nil, {code = ...} of an expected failure.
func errResult(results []any) (code string, left int, ok bool) {
	if len(results) < 2 || results[0] != nil {
		return "", 0, false
	}
	m, isMap := results[1].(map[string]any)
	if !isMap {
		return "", 0, false
	}
	code, ok = m["code"].(string)
	left = -1
	if n, isNum := m["retries_left"].(float64); isNum {
		left = int(n)
	}
	return code, left, ok
}

// keepKeyID gives a key generation the id the record shows the client's key got, unless
// the script chose one: ids are random otherwise, and the calls after it name the key.
func (p *Player) keepKeyID(L *lua.LState, c *transcript.Call) {
	if c.Name != bindtoken.TokenType+":generate_key" || len(c.Results) == 0 {
		return
	}
	h, ok := c.Results[0].(map[string]any)
	if !ok {
		return
	}
	fields, _ := h["fields"].(map[string]any)
	id, _ := fields["id"].(string)
	opts, ok := L.Get(2).(*lua.LTable)
	if id == "" || !ok || opts.RawGetString("id") != lua.LNil {
		return
	}
	cp := copyTable(L, opts)
	cp.RawSetString("id", lua.LString(id))
	L.Replace(2, cp)
}

// checkLive compares a real call's outcome with the record's, and learns which new keys
// stand for the client's.
func (p *Player) checkLive(c *transcript.Call, e runtime.CallEvent) {
	got := normalize(transcript.Clean(e.Results))
	recorded := c.Results
	if c.Name == "token.list" {
		recorded = initialisedOnly(recorded)
	}
	var reason string
	switch {
	case c.Error != "" && e.Err == "":
		reason = fmt.Sprintf("the client's token raised %q, the reproduction token gave %s", c.Error, brief(got))
	case c.Error == "" && e.Err != "":
		reason = fmt.Sprintf("the client's token gave %s, the reproduction token raised %q", brief(c.Results), e.Err)
	case c.Error == "" && !Loose(recorded, got):
		reason = fmt.Sprintf("the client's token gave %s, the reproduction token %s", brief(recorded), brief(got))
	}
	if reason != "" {
		p.div = &Divergence{Seq: c.Seq, Reason: c.Name + ": " + reason}
		return
	}
	p.learnKeys(c.Results, got)
}

// initialisedOnly drops the uninitialised tokens from a recorded token.list: a
// reproduction cannot have one (a software token is always initialised), and procedures
// do not count them when they pick a token.
func initialisedOnly(results []any) []any {
	if len(results) == 0 {
		return results
	}
	list, ok := results[0].([]any)
	if !ok {
		return results
	}
	kept := []any{}
	for _, v := range list {
		if m, ok := v.(map[string]any); ok && m["initialized"] == false {
			continue
		}
		kept = append(kept, v)
	}
	return append([]any{kept}, results[1:]...)
}

// learnKeys walks a recorded result and the real one side by side and maps every recorded
// token.Key's public key to the new one at the same place.
func (p *Player) learnKeys(recorded, got any) {
	if p.live.StandIn == nil {
		return
	}
	switch r := recorded.(type) {
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(r) {
			return
		}
		for i := range r {
			p.learnKeys(r[i], g[i])
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return
		}
		if r["type"] == bindtoken.KeyType {
			rf, _ := r["fields"].(map[string]any)
			gf, _ := g["fields"].(map[string]any)
			rp, _ := rf["public_key"].(string)
			gp, _ := gf["public_key"].(string)
			p.live.StandIn.MapPEM(rp, gp)
			return
		}
		for k, v := range r {
			p.learnKeys(v, g[k])
		}
	}
}

// Loose is Match for a reproduction: a recorded "<secret>" matches anything; binary data
// ({"$bytes"}) matches any binary data and PEM text any PEM text of the same type (keys
// and certificates are stand-ins); an error table matches one with the same code (and
// tries left, when the record has them); a table may have keys the record lacks.
func Loose(recorded, got any) bool {
	switch r := recorded.(type) {
	case string:
		if r == runtime.Redacted {
			return true
		}
		if kind, ok := pemKind(r); ok {
			g, _ := got.(string)
			gk, gok := pemKind(g)
			return gok && gk == kind
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(r) {
			return false
		}
		for i := range r {
			if !Loose(r[i], g[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		if _, bin := r["$bytes"]; bin && len(r) == 1 {
			_, gbin := g["$bytes"]
			return gbin && len(g) == 1
		}
		if code, isErr := r["code"].(string); isErr {
			if g["code"] != code {
				return false
			}
			if n, ok := r["retries_left"].(float64); ok && n >= 0 {
				return reflect.DeepEqual(g["retries_left"], n)
			}
			return true
		}
		for k, v := range r {
			gv, ok := g[k]
			if !ok || !Loose(v, gv) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(recorded, got)
}

// pemKind is the type of PEM text ("CERTIFICATE"), ok false for other text.
func pemKind(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, "-----BEGIN ")
	if !ok {
		return "", false
	}
	kind, _, ok := strings.Cut(rest, "-----")
	return kind, ok
}

// brief is a value for a message: JSON, with long strings cut.
func brief(v any) string {
	b, err := json.Marshal(shorten(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func shorten(v any) any {
	switch v := v.(type) {
	case string:
		if len(v) > 48 {
			return v[:40] + "…"
		}
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = shorten(x)
		}
		return out
	case map[string]any:
		if _, bin := v["$bytes"]; bin && len(v) == 1 {
			return "<binary>"
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = shorten(x)
		}
		return out
	}
	return v
}
