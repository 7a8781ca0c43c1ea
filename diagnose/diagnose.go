// Package diagnose is the report of `tokenrun diagnose`: the PKCS#11 modules and their
// tokens, the scripts a procedure run loads, installed bundles and whether each verifies
// now, pending journals and recent transcripts. It holds no secret and reads no PIN file.
package diagnose

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/tokenrun/tokenrun/agent/audit"
	"github.com/tokenrun/tokenrun/bundle"
	"github.com/tokenrun/tokenrun/internal/termtext"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/floor"
	"github.com/tokenrun/tokenrun/token/pkcs11"
	"github.com/tokenrun/tokenrun/token/soft"
	"github.com/tokenrun/tokenrun/transcript"
)

// Report is what `tokenrun diagnose` reports. It holds no secret by construction: token
// flags, versions, journal fields (which never hold secrets: journal refuses them) and
// transcript summaries; no PIN file is ever read.
type Report struct {
	Time           time.Time            `json:"time"`
	RuntimeVersion string               `json:"runtime_version"`
	APILevel       int                  `json:"api_level"`
	OS             string               `json:"os"`
	Arch           string               `json:"arch"`
	Home           string               `json:"home"`
	Modules        []Module             `json:"modules"`
	Probed         []Candidate          `json:"probed,omitempty"` // every usual place looked at (KnownModules); none with --probe=false
	Scripts        []Scripts            `json:"scripts"`
	BundleStore    string               `json:"bundle_store"`
	BundlesError   string               `json:"bundles_error,omitempty"`
	TrustedKeys    []Key                `json:"trusted_keys"`
	Bundles        []Bundle             `json:"bundles"`
	Journals       []*journal.Entry     `json:"journals"`
	Transcripts    []transcript.Summary `json:"transcripts"`
	// Floor is the safety floor's state: failed PIN tries tokenrun counted, runs holding a token.
	Floor floor.State `json:"floor"`
	// Agent is the signing agent's: whether one runs, for which origins, and its audit log's
	// latest entries.
	Agent    Agent    `json:"agent"`
	Problems []string `json:"problems,omitempty"`
}

// Agent is what `tokenrun agent` left under the data directory.
type Agent struct {
	// State is what a running agent wrote (nil: none runs, or it stopped cleanly); Running
	// says whether its process is still there.
	State   *audit.State `json:"state"`
	Running bool         `json:"running"`
	// CA is the agent's own certificate authority (install-cert adds it to trust stores);
	// "" when it has not made one.
	CA       string        `json:"ca,omitempty"`
	AuditLog string        `json:"audit_log"`
	Audit    []audit.Entry `json:"audit"` // the latest entries, older first
}

// auditTail is how many of the audit log's entries a diagnosis shows.
const auditTail = 20

// Module is one token source: a PKCS#11 module or software token directories.
type Module struct {
	Name   string       `json:"name"`
	Path   string       `json:"path"`
	Found  bool         `json:"found"`
	Error  string       `json:"error,omitempty"`
	Tokens []token.Info `json:"tokens"`
}

// Scripts is one scripts tree the host could run; Runs marks the one a procedure
// run would load now.
type Scripts struct {
	Source  string `json:"source"`
	Version string `json:"version"`
	// Digest is scripts.Set.Digest, as transcripts record it: support compares the two.
	Digest string `json:"digest"`
	Runs   bool   `json:"runs"`
}

// Key is a trusted release key, by its ID: never the key itself.
type Key struct {
	ID      string `json:"id"`
	Comment string `json:"comment,omitempty"`
}

// Bundle is one installed script bundle and whether it verifies now against the
// keys procedure runs trust. RecordError is a missing or unreadable install record;
// VerifyError why the installed tree is refused.
type Bundle struct {
	ID            string    `json:"id"`
	Version       string    `json:"version"`
	Path          string    `json:"path"`
	Source        string    `json:"source,omitempty"`
	Signer        string    `json:"signer,omitempty"` // key ID
	SignerComment string    `json:"signer_comment,omitempty"`
	Installed     time.Time `json:"installed,omitzero"`
	Active        bool      `json:"active"`
	Previous      bool      `json:"previous"`
	Verified      bool      `json:"verified"`
	VerifyError   string    `json:"verify_error,omitempty"`
	RecordError   string    `json:"record_error,omitempty"`
}

// Options say which token sources a diagnosis looks at besides the data directory.
type Options struct {
	Modules []string // PKCS#11 libraries to look at (--module)
	Soft    []string // software token directories, never created (--soft)
	Probe   bool     // also the usual module locations of this system (KnownModules)
}

// Gather makes the report. Each part that fails is noted in Problems or beside what it
// concerns: a diagnosis is most wanted when things are broken.
func Gather(ctx context.Context, o Options) *Report {
	d := &Report{Time: time.Now().UTC(), RuntimeVersion: runtime.Version, APILevel: runtime.APILevel,
		OS: goruntime.GOOS, Arch: goruntime.GOARCH,
		Modules: []Module{}, Scripts: []Scripts{}, TrustedKeys: []Key{}, Bundles: []Bundle{},
		Journals: []*journal.Entry{}, Transcripts: []transcript.Summary{}}
	problem := func(format string, args ...any) { d.Problems = append(d.Problems, fmt.Sprintf(format, args...)) }

	var seen []string
	probe := func(name, path string) {
		// Debian links one library under two paths: load each file once.
		real := path
		if r, err := filepath.EvalSymlinks(path); err == nil {
			real = r
		}
		if slices.Contains(seen, real) {
			return
		}
		seen = append(seen, real)
		d.Modules = append(d.Modules, probeModule(ctx, name, path))
	}
	if o.Probe {
		d.Probed = KnownModules(goruntime.GOOS, goruntime.GOARCH, os.Getenv)
		for _, m := range present(d.Probed) {
			probe(m.Name, m.Path)
		}
	}
	for _, m := range o.Modules {
		probe("--module", m)
	}
	if len(o.Soft) > 0 {
		d.Modules = append(d.Modules, probeSoft(ctx, o.Soft))
	}

	if set, err := scripts.Embedded(); err != nil {
		problem("embedded scripts: %v", err)
	} else {
		d.Scripts = append(d.Scripts, scriptsDiagnosis(set))
	}
	// The set a procedure run would load, chosen as runs choose it; its warnings are left
	// out here: the bundles below say, one by one, why any is refused.
	if set, err := runner.InstalledOrEmbedded(io.Discard); err != nil {
		problem("scripts a procedure run would load: %v", err)
	} else {
		markRunning(d, scriptsDiagnosis(set))
	}

	home, err := runner.Home()
	if err != nil {
		problem("data directory: %v", err)
		d.BundlesError = fmt.Sprintf("data directory: %v", err)
		return d
	}
	d.Home = home
	diagnoseBundles(d, home)
	// journal.Open creates its directory: only look when there is one.
	if dir := filepath.Join(home, "journal"); exists(dir) {
		if st, err := journal.Open(dir); err != nil {
			problem("journals: %v", err)
		} else if open, err := st.Open(); err != nil {
			problem("journals: %v", err)
		} else {
			d.Journals = append(d.Journals, open...)
		}
	}
	d.Floor = floor.ReadState(filepath.Join(home, "floor"))
	for _, p := range d.Floor.Problems {
		problem("%s", p)
	}
	gatherAgent(d, home, problem)
	if sums, err := transcript.List(filepath.Join(home, "transcripts")); err != nil {
		problem("transcripts: %v", err)
	} else {
		d.Transcripts = sums
	}
	return d
}

// gatherAgent reads the agent's state file and the tail of its audit log.
func gatherAgent(d *Report, home string, problem func(string, ...any)) {
	dir := audit.Dir(home)
	d.Agent = Agent{AuditLog: filepath.Join(dir, "audit.jsonl"), Audit: []audit.Entry{}}
	st, err := audit.ReadState(dir)
	if err != nil {
		problem("agent: %v", err)
	}
	d.Agent.State, d.Agent.Running = st, st.Running()
	if ca := filepath.Join(dir, "tls", "ca.pem"); exists(ca) {
		d.Agent.CA = ca
	}
	tail, err := audit.Tail(dir, auditTail)
	if err != nil {
		problem("agent audit log: %v", err)
	}
	d.Agent.Audit = append(d.Agent.Audit, tail...)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func probeModule(ctx context.Context, name, path string) Module {
	m := Module{Name: name, Path: path, Tokens: []token.Info{}}
	if _, err := os.Stat(path); err != nil {
		m.Error = err.Error()
		return m
	}
	m.Found = true
	p, err := pkcs11.Open(path)
	if err != nil {
		m.Error = err.Error()
		return m
	}
	defer p.Close()
	infos, err := p.Tokens(ctx)
	if err != nil {
		m.Error = err.Error()
	}
	m.Tokens = append(m.Tokens, infos...)
	return m
}

// probeSoft looks at software token directories without creating any: an empty or missing
// directory is reported, not given a blank token.
func probeSoft(ctx context.Context, dirs []string) Module {
	m := Module{Name: "software token", Path: strings.Join(dirs, ", "), Tokens: []token.Info{}}
	var present, missing []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			missing = append(missing, dir)
			continue
		}
		present = append(present, dir)
	}
	if len(missing) > 0 {
		m.Error = "no software token in " + strings.Join(missing, ", ")
	}
	if len(present) == 0 {
		return m
	}
	m.Found = true
	p, err := soft.Open(soft.Options{}, present...)
	if err != nil {
		m.Error = strings.TrimPrefix(m.Error+"; "+err.Error(), "; ")
		return m
	}
	defer p.Close()
	infos, err := p.Tokens(ctx)
	if err != nil {
		m.Error = strings.TrimPrefix(m.Error+"; "+err.Error(), "; ")
	}
	m.Tokens = append(m.Tokens, infos...)
	return m
}

func scriptsDiagnosis(set *scripts.Set) Scripts {
	return Scripts{Source: set.Source, Version: set.Manifest.Version, Digest: set.Digest}
}

// markRunning marks s as the set procedure runs load, adding it when it is not listed.
func markRunning(d *Report, s Scripts) {
	for i := range d.Scripts {
		if d.Scripts[i].Source == s.Source {
			d.Scripts[i].Runs = true
			return
		}
	}
	s.Runs = true
	d.Scripts = append(d.Scripts, s)
}

// diagnoseBundles lists every installed bundle version (active first, then previous, then
// any other version directory left in the store) and verifies each now, as a run would.
// Nothing here fails the diagnosis: a store that cannot be read is said in BundlesError.
func diagnoseBundles(d *Report, home string) {
	store := bundle.OpenStore(home)
	d.BundleStore = store.Dir
	var storeErrs []string
	var warn strings.Builder
	keys, err := runner.RunKeys(store, &warn)
	if err != nil {
		storeErrs = append(storeErrs, err.Error())
	}
	for _, line := range strings.Split(warn.String(), "\n") {
		if line = strings.TrimSpace(strings.TrimPrefix(line, "warning: ")); line != "" {
			d.Problems = append(d.Problems, "trusted keys: "+line)
		}
	}
	for _, k := range keys {
		d.TrustedKeys = append(d.TrustedKeys, Key{ID: k.ID(), Comment: k.Comment})
	}

	var ids []string
	add := func(id string) {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	active, err := store.Active()
	if err != nil {
		storeErrs = append(storeErrs, err.Error())
	}
	previous, err := store.Previous()
	if err != nil {
		storeErrs = append(storeErrs, err.Error())
	}
	add(active)
	add(previous)
	others, err := store.Versions()
	if err != nil {
		storeErrs = append(storeErrs, err.Error())
	}
	for _, id := range others {
		add(id)
	}
	for _, id := range ids {
		d.Bundles = append(d.Bundles, diagnoseBundle(store, id, keys, id == active, id == previous))
	}
	d.BundlesError = strings.Join(storeErrs, "; ")
}

func diagnoseBundle(store *bundle.Store, id string, keys bundle.Keyring, active, previous bool) Bundle {
	bd := Bundle{ID: id, Path: filepath.Join(store.Dir, "versions", id), Active: active, Previous: previous}
	if m, err := store.Meta(id); err != nil {
		bd.RecordError = err.Error()
	} else {
		bd.Version, bd.Source, bd.Signer, bd.SignerComment, bd.Installed = m.Version, m.Source, m.Signer, m.SignerComment, m.Installed
	}
	b, err := store.Load(id, keys)
	if err != nil {
		bd.VerifyError = err.Error()
		return bd
	}
	bd.Verified = true
	bd.Version, bd.Signer, bd.SignerComment = b.Manifest.Version, b.Signer.ID(), b.Signer.Comment
	return bd
}

// writeBundlesText is the installed bundles part of the text report.
func writeBundlesText(w io.Writer, d *Report) {
	fmt.Fprintf(w, "\ninstalled bundles in %s:\n", d.BundleStore)
	if d.BundlesError != "" {
		fmt.Fprintf(w, "  cannot read the store: %s\n", d.BundlesError)
	}
	if len(d.Bundles) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, b := range d.Bundles {
		version := b.Version
		if version == "" {
			version = "(version unknown)"
		}
		var state []string
		if b.Active {
			state = append(state, "active")
		}
		if b.Previous {
			state = append(state, "previous")
		}
		if len(state) == 0 {
			state = append(state, "not in use")
		}
		fmt.Fprintf(w, "  %s (%s) %s\n    at %s\n", version, b.ID, strings.Join(state, ", "), b.Path)
		if b.Signer != "" {
			fmt.Fprintf(w, "    signed by %s %s\n", b.Signer, b.SignerComment)
		}
		if b.RecordError != "" {
			fmt.Fprintf(w, "    no install record: %s\n", b.RecordError)
		} else {
			fmt.Fprintf(w, "    installed %s from %s\n", b.Installed.Format(time.RFC3339), b.Source)
		}
		if b.Verified {
			fmt.Fprintln(w, "    verification: OK")
		} else {
			fmt.Fprintf(w, "    verification: FAILED: %s\n", b.VerifyError)
		}
	}
	ids := make([]string, len(d.TrustedKeys))
	for i, k := range d.TrustedKeys {
		ids[i] = strings.TrimSpace(k.ID + " " + k.Comment)
	}
	if len(ids) == 0 {
		ids = append(ids, "none")
	}
	fmt.Fprintf(w, "  trusted keys: %s\n", strings.Join(ids, "; "))
}

// WriteText is the report for a person to read over the phone.
func WriteText(w io.Writer, d *Report) {
	fmt.Fprintf(w, "tokenrun %s (script API %d) on %s/%s, %s\n", d.RuntimeVersion, d.APILevel, d.OS, d.Arch, d.Time.Format(time.RFC3339))
	fmt.Fprintf(w, "data directory: %s\n\nmodules:\n", d.Home)
	if len(d.Modules) == 0 {
		fmt.Fprintln(w, "  none found")
	}
	for _, m := range d.Modules {
		fmt.Fprintf(w, "  %s %s", m.Name, m.Path)
		if m.Error != "" {
			fmt.Fprintf(w, " (%s)", m.Error)
		}
		fmt.Fprintln(w)
		for _, t := range m.Tokens {
			label := t.Label
			if !t.Initialized {
				label = "(uninitialised)"
			}
			fmt.Fprintf(w, "    %s serial %s, %s %s: user PIN %s, SO PIN %s\n", label, t.Serial, t.Manufacturer, t.Model, PINState(t.UserPIN), PINState(t.SOPIN))
		}
	}
	if len(d.Probed) > 0 {
		fmt.Fprintf(w, "  (looked in the %d usual places for this system; --module PATH looks at another)\n", len(d.Probed))
	}
	fmt.Fprintln(w, "\nscripts:")
	for _, s := range d.Scripts {
		runs := ""
		if s.Runs {
			runs = "  <- procedure runs load this"
		}
		fmt.Fprintf(w, "  %s %s (digest %.12s)%s\n", s.Source, s.Version, s.Digest, runs)
	}
	writeBundlesText(w, d)
	fmt.Fprintln(w, "\npending enrollments:")
	if len(d.Journals) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, j := range d.Journals {
		data, _ := json.Marshal(j.Data)
		fmt.Fprintf(w, "  token %s: %s at step %s, started %s, updated %s, data %s\n", j.Serial, j.Procedure, j.Step,
			j.Started.Format(time.RFC3339), j.Updated.Format(time.RFC3339), data)
	}
	fmt.Fprintln(w, "\nPIN tries tokenrun counted as failed since the last success (the safety floor):")
	if len(d.Floor.Tries) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, t := range d.Floor.Tries {
		fmt.Fprintf(w, "  %s: user %d, administrator %d (updated %s)\n", termtext.Escape(t.Token), t.Failures["user"], t.Failures["so"], t.Updated.Format(time.RFC3339))
	}
	for _, h := range d.Floor.Held {
		fmt.Fprintf(w, "  in use now: %s by %s\n", termtext.Escape(h.Token), termtext.Escape(h.String()))
	}
	writeAgent(w, d.Agent)
	fmt.Fprintln(w, "\nrecent transcripts:")
	if len(d.Transcripts) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, t := range d.Transcripts {
		outcome := t.Outcome
		if t.Code != "" {
			outcome += " " + t.Code
		}
		if t.Problem != "" {
			outcome = t.Problem
		}
		fmt.Fprintf(w, "  %s  %d bytes  %s %s: %s\n", t.Name, t.Size, t.Procedure, t.Version, outcome)
	}
	for _, p := range d.Problems {
		fmt.Fprintf(w, "\nproblem: %s\n", p)
	}
}

// writeAgent is the agent's part of the text report.
func writeAgent(w io.Writer, a Agent) {
	fmt.Fprintln(w, "\nsigning agent (tokenrun agent):")
	switch {
	case a.State == nil:
		fmt.Fprintln(w, "  not running")
	case a.Running:
		fmt.Fprintf(w, "  running: pid %d since %s on %s, region %s, person %s, origins %s\n", a.State.PID, a.State.Started.Format(time.RFC3339),
			a.State.URL, a.State.Region, a.State.Person, termtext.Escape(strings.Join(a.State.Origins, ", ")))
	default:
		fmt.Fprintf(w, "  not running (pid %d, started %s, stopped without cleaning up)\n", a.State.PID, a.State.Started.Format(time.RFC3339))
	}
	if a.CA != "" {
		fmt.Fprintf(w, "  its certificate authority: %s\n", a.CA)
	}
	fmt.Fprintf(w, "  audit log %s, latest:\n", a.AuditLog)
	if len(a.Audit) == 0 {
		fmt.Fprintln(w, "    none")
	}
	for _, e := range a.Audit {
		line := strings.Join(slices.DeleteFunc([]string{e.Time.Format(time.RFC3339), e.Origin, e.Method,
			fmt.Sprintf("%d document(s)", len(e.Documents)), e.Outcome, e.Code}, func(s string) bool { return s == "" }), " ")
		if e.Reason != "" {
			line += ": " + e.Reason
		}
		fmt.Fprintf(w, "    %s\n", termtext.Escape(line))
	}
}

// PINState is a PIN's state as a person reads it.
func PINState(s token.PINStatus) string {
	var parts []string
	switch {
	case s.Locked:
		parts = append(parts, "LOCKED")
	case s.FinalTry:
		parts = append(parts, "final try")
	case s.CountLow:
		parts = append(parts, "count low")
	default:
		parts = append(parts, "ok")
	}
	if s.RetriesLeft >= 0 && !s.Locked {
		parts = append(parts, fmt.Sprintf("%d left", s.RetriesLeft))
	}
	if s.ToBeChanged {
		parts = append(parts, "to be changed")
	}
	return strings.Join(parts, ", ")
}
