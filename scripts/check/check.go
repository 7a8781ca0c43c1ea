// Package check owns `tokenrun scripts check`: everything that can be verified about a
// scripts tree without a token — that every script compiles, that each procedure returns
// valid metadata, that regions and message catalogs hold, and what luacheck finds with a
// standard generated from the module registry.
package check

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"gopkg.in/yaml.v3"

	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/runtime/luadoc"
	"github.com/tokenrun/tokenrun/scripts"
)

// Problem is one thing wrong with the tree. File is relative to the tree's root; Line is
// 0 when none applies. A problem whose Msg already names its place leaves File empty.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string {
	switch {
	case p.File == "":
		return p.Msg
	case p.Line > 0:
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return p.File + ": " + p.Msg
}

// Report is the outcome: Problems fail the check, Notes only inform.
type Report struct {
	Problems []Problem
	Notes    []string
}

// Options configures a check.
type Options struct {
	// Modules are the host modules scripts may require, built for their metadata only
	// (bindings/all.Modules): their functions are never called.
	Modules []runtime.Module
	// Luacheck is the luacheck binary; "" looks it up on PATH. A missing luacheck is a
	// problem, not a skip: a check that silently lints nothing would pass broken trees.
	Luacheck string
	// Goldens runs the tree's golden cases, tests/<procedure>/<case>/ given as their own
	// tree, and returns the cases that failed and what it skipped. The runner needs the
	// CLI, the development CA and a token, so the command supplies it; nil leaves the
	// cases unrun with a note.
	Goldens func(ctx context.Context, tests fs.FS) (problems []Problem, notes []string, err error)
}

// Tree checks the scripts tree fsys. An error is returned only when the check itself
// could not run (no temp directory); everything wrong with the tree is in the Report.
func Tree(ctx context.Context, fsys fs.FS, opts Options) (*Report, error) {
	r := &Report{}
	r.compileAll(fsys)
	set, err := scripts.Load(fsys, "tree")
	if err != nil {
		// Load stops at the first bad file, which compileAll has reported with its line;
		// the procedures that do compile still get their metadata checked.
		if !errors.As(err, new(*runtime.ScriptError)) {
			r.Problems = append(r.Problems, Problem{File: "manifest.yaml", Msg: err.Error()})
		}
		set = partialSet(fsys)
	}
	cfg := r.regions(fsys)
	r.catalogs(fsys)
	if set != nil {
		r.metadata(ctx, set, cfg, opts.Modules)
	}
	if err := r.luacheck(ctx, fsys, opts); err != nil {
		return nil, err
	}
	if err := r.goldens(ctx, fsys, opts); err != nil {
		return nil, err
	}
	sort.SliceStable(r.Problems, func(i, j int) bool {
		a, b := r.Problems[i], r.Problems[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	return r, nil
}

// compileAll compiles every .lua file, so each syntax error is reported, not the first.
func (r *Report) compileAll(fsys fs.FS) {
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			r.Problems = append(r.Problems, Problem{File: p, Msg: err.Error()})
			return nil
		}
		if d.IsDir() || path.Ext(p) != ".lua" {
			return nil
		}
		src, err := readfile.ReadFS(fsys, p, readfile.Script)
		if err != nil {
			r.Problems = append(r.Problems, Problem{File: p, Msg: err.Error()})
			return nil
		}
		if _, err := runtime.Compile(p, src); err != nil {
			var se *runtime.ScriptError
			if errors.As(err, &se) {
				r.Problems = append(r.Problems, Problem{File: p, Line: se.Line, Msg: se.Message})
			} else {
				r.Problems = append(r.Problems, Problem{File: p, Msg: err.Error()})
			}
		}
		return nil
	})
}

// partialSet is what of the tree compiles, when scripts.Load refused the whole; nil when
// even the manifest does not read.
func partialSet(fsys fs.FS) *scripts.Set {
	raw, err := readfile.ReadFS(fsys, "manifest.yaml", scripts.ManifestKind)
	if err != nil {
		return nil
	}
	s := &scripts.Set{FS: fsys, Procedures: map[string]*runtime.Script{}, Libraries: map[string]*runtime.Script{}}
	if yaml.Unmarshal(raw, &s.Manifest) != nil {
		return nil
	}
	compile := func(file string) *runtime.Script {
		src, err := readfile.ReadFS(fsys, file, readfile.Script)
		if err != nil {
			return nil
		}
		sc, _ := runtime.Compile(file, src) // compileAll reported the error
		return sc
	}
	for name, file := range s.Manifest.Procedures {
		if sc := compile(file); sc != nil {
			s.Procedures[name] = sc
		}
	}
	libs, _ := fs.Glob(fsys, "lib/*.lua") // constant pattern
	for _, file := range libs {
		if sc := compile(file); sc != nil {
			s.Libraries["lib."+strings.TrimSuffix(path.Base(file), ".lua")] = sc
		}
	}
	return s
}

// regions loads every region and returns the default one's values as ctx.config for the
// metadata runs (nil when it does not load).
func (r *Report) regions(fsys fs.FS) map[string]any {
	names := region.Names(fsys)
	if len(names) == 0 {
		r.Problems = append(r.Problems, Problem{File: "regions/", Msg: "no region files (regions/default.yaml is required)"})
	}
	var cfg map[string]any
	for _, name := range names {
		reg, err := region.Load(fsys, name)
		if err != nil {
			var es region.Errors
			if errors.As(err, &es) {
				for _, e := range es {
					r.Problems = append(r.Problems, Problem{Msg: e.Error()})
				}
			} else {
				r.Problems = append(r.Problems, Problem{File: "regions/" + name + ".yaml", Msg: err.Error()})
			}
			continue
		}
		if name == region.DefaultName {
			cfg = reg.Map()
			cfg["language"] = reg.Language
			if msgs, err := reg.Catalog(""); err == nil {
				cfg["messages"] = msgs
			}
		}
	}
	return cfg
}

func (r *Report) catalogs(fsys fs.FS) {
	for _, err := range region.CheckCatalogs(fsys) {
		r.Problems = append(r.Problems, Problem{Msg: err.Error()})
	}
}

// errStop is what every host function raises during a metadata run: the procedure has
// passed its metadata and started its work, which is as far as a check may go.
var errStop = errors.New("tokenrun scripts check: stopped at the first host call")

// stubbed returns mods with every function and method replaced by one raising errStop.
// Names, Since, Args and Secret are kept, so require and the API level checks behave as
// in a real run, but nothing reaches a token, a person, a CA or the disk.
func stubbed(mods []runtime.Module) []runtime.Module {
	stop := func(L *lua.LState) int {
		runtime.Raise(L, errStop)
		return 0
	}
	out := make([]runtime.Module, len(mods))
	for i, m := range mods {
		m.Funcs = append([]runtime.Func(nil), m.Funcs...)
		for j := range m.Funcs {
			m.Funcs[j].Fn = stop
		}
		types := make([]runtime.Type, len(m.Types))
		for j, t := range m.Types {
			t.Methods = append([]runtime.Func(nil), t.Methods...)
			for k := range t.Methods {
				t.Methods[k].Fn = stop
			}
			types[j] = t
		}
		m.Types = types
		out[i] = m
	}
	return out
}

// metadata runs each procedure's chunk with stubbed modules: the runtime validates the
// returned metadata exactly as for a real run, and the first host call in run stops it.
func (r *Report) metadata(ctx context.Context, set *scripts.Set, cfg map[string]any, mods []runtime.Module) {
	reg := runtime.NewRegistry()
	for _, m := range stubbed(mods) {
		if err := reg.Add(m); err != nil {
			r.Problems = append(r.Problems, Problem{Msg: fmt.Sprintf("host module %s: %v", m.Name, err)})
			return
		}
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	for _, name := range set.Names() {
		sc := set.Procedures[name]
		file := set.Manifest.Procedures[name]
		res, err := runtime.Run(ctx, sc, runtime.RunOptions{Registry: reg, Config: cfg, Libraries: set.Libraries,
			Timeout: 5 * time.Second, Args: map[string]any{}})
		var got string
		var se *runtime.ScriptError
		switch {
		case err == nil && res.Procedure == nil:
			r.Problems = append(r.Problems, Problem{File: file, Msg: "does not return a procedure table (name, version, api, description, run)"})
			continue
		case err == nil:
			got = res.Procedure.Name
		case errors.Is(err, errStop) && errors.As(err, &se):
			got = se.Procedure
		case errors.As(err, &se) && (se.Procedure == "" || strings.HasPrefix(se.Message, "procedure metadata:") || errors.Is(err, runtime.ErrAPILevel)):
			// Before or while the metadata was read: loading the file itself fails.
			f := se.File
			if f == "" {
				f = file
			}
			r.Problems = append(r.Problems, Problem{File: f, Line: se.Line, Msg: se.Message})
			continue
		case errors.As(err, &se):
			// run failed before its first host call: not a metadata problem, and without a
			// token the check cannot tell a bug from a missing value; say so.
			r.Notes = append(r.Notes, fmt.Sprintf("%s: run stopped before its first host call (%v); the golden tests cover run", file, err))
			got = se.Procedure
		default:
			r.Problems = append(r.Problems, Problem{File: file, Msg: err.Error()})
			continue
		}
		if got != "" && got != name {
			r.Problems = append(r.Problems, Problem{File: file, Msg: fmt.Sprintf("procedure name %q differs from its manifest entry %q", got, name)})
		}
	}
}

// requireRe matches `local token = require("token")` (any quotes, with or without
// parentheses) where the local has the module's own name.
var requireRe = regexp.MustCompile(`local\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*require\s*\(?\s*["']([A-Za-z_][A-Za-z0-9_.]*)["']\s*\)?`)

// blankRequires replaces each `local M = require("M")` of a host module with spaces of the
// same length, so that M in the rest of the file is the global the generated standard
// declares with M's exact fields, and luacheck's lines and columns stay those of the file.
func blankRequires(src []byte, modules map[string]bool) []byte {
	return requireRe.ReplaceAllFunc(src, func(m []byte) []byte {
		sub := requireRe.FindSubmatch(m)
		if string(sub[1]) != string(sub[2]) || !modules[string(sub[1])] {
			return m
		}
		return bytes.Repeat([]byte(" "), len(m))
	})
}

// luacheckLine is luacheck's plain format with --codes: "file:line:col: (W113) message".
var luacheckLine = regexp.MustCompile(`^(.+?):(\d+):(\d+): \((\w\d+)\) (.*)$`)

// undefinedField matches the warning for a misspelt module function (W143).
var undefinedField = regexp.MustCompile(`of global '([A-Za-z_][A-Za-z0-9_]*)'`)

// luacheck runs two passes. The first lints the tree as written against the sandbox
// standard: stray globals, missing requires, unused values. The second lints a copy with
// the host modules' requires blanked against a standard declaring each module as a global
// with its exact fields, and keeps only "undefined field of a module" warnings: luacheck
// does not follow require, so this is how it learns a module's fields.
func (r *Report) luacheck(ctx context.Context, fsys fs.FS, opts Options) error {
	bin := opts.Luacheck
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("luacheck"); err != nil {
			r.Problems = append(r.Problems, Problem{Msg: "luacheck not found, so the scripts were not linted: install it (apt-get install lua-check) and check again"})
			return nil
		}
	}
	tmp, err := os.MkdirTemp("", "tokenrun-check-")
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	defer os.RemoveAll(tmp)
	plain, blanked := filepath.Join(tmp, "plain"), filepath.Join(tmp, "blanked")
	modules := map[string]bool{}
	for _, m := range opts.Modules {
		modules[m.Name] = true
	}
	if err := copyLua(fsys, plain, nil); err != nil {
		return err
	}
	if err := copyLua(fsys, blanked, modules); err != nil {
		return err
	}
	for _, pass := range []struct {
		dir     string
		modules bool
	}{{plain, false}, {blanked, true}} {
		var cfg bytes.Buffer
		if err := luadoc.Luacheck(&cfg, opts.Modules, pass.modules); err != nil {
			return err
		}
		cfgFile := pass.dir + ".luacheckrc"
		if err := os.WriteFile(cfgFile, cfg.Bytes(), 0o644); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		// The file comes first: --only takes a list and would swallow it.
		args := []string{".", "--no-color", "--codes", "--formatter", "plain", "--config", cfgFile}
		if pass.modules {
			args = append(args, "--only", "143")
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = pass.dir
		out, err := cmd.Output()
		var ee *exec.ExitError
		// luacheck exits 1 for warnings and 2 for errors, both reported on stdout; 3 and
		// above mean it could not run.
		if err != nil && (!errors.As(err, &ee) || ee.ExitCode() > 2) {
			r.Problems = append(r.Problems, Problem{Msg: fmt.Sprintf("luacheck failed: %v: %s", err, bytes.TrimSpace(append(out, stderrOf(err)...)))})
			return nil
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			m := luacheckLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			if pass.modules {
				g := undefinedField.FindStringSubmatch(m[5])
				if g == nil || !modules[g[1]] {
					continue // the first pass reported it already
				}
			}
			line, _ := strconv.Atoi(m[2])
			r.Problems = append(r.Problems, Problem{File: strings.TrimPrefix(m[1], "./"), Line: line, Msg: "luacheck: " + m[5] + " (" + m[4] + ")"})
		}
	}
	return nil
}

func stderrOf(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}

// copyLua copies the .lua files of fsys under dir, blanking host requires when modules is
// set; luacheck reads only files on disk and the shipped tree is embedded.
func copyLua(fsys fs.FS, dir string, modules map[string]bool) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".lua" {
			return err
		}
		src, err := readfile.ReadFS(fsys, p, readfile.Script)
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		if modules != nil {
			src = blankRequires(src, modules)
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		if err := os.WriteFile(dst, src, 0o644); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		return nil
	})
}

// goldens runs the tree's golden cases with opts.Goldens, or notes them when there is no
// runner: running them needs the development CA, a token and the CLI's driver, which live
// in cmd/tokenrun.
func (r *Report) goldens(ctx context.Context, fsys fs.FS, opts Options) error {
	cases, _ := fs.Glob(fsys, "tests/*/*/expected.golden") // constant pattern
	if len(cases) == 0 {
		return nil
	}
	if opts.Goldens == nil {
		r.Notes = append(r.Notes, fmt.Sprintf("%d golden cases in tests/ were not run: check does not run them; "+
			"for the shipped tree run `go test ./cmd/tokenrun -run TestProcedureGoldens` in the tokenrun source", len(cases)))
		return nil
	}
	tests, err := fs.Sub(fsys, "tests")
	if err != nil {
		return fmt.Errorf("golden cases: %w", err)
	}
	problems, notes, err := opts.Goldens(ctx, tests)
	if err != nil {
		return fmt.Errorf("golden cases: %w", err)
	}
	r.Problems = append(r.Problems, problems...)
	r.Notes = append(r.Notes, notes...)
	return nil
}

// errPrompts stops a procedure once its metadata is read (see Prompts).
var errPrompts = errors.New("metadata read")

// Prompts reads the prompts each procedure of set declares: its chunk runs with stubbed host
// modules, and the run stops once the runtime has validated the metadata, before run.
func Prompts(ctx context.Context, set *scripts.Set, cfg map[string]any, mods []runtime.Module) (map[string][]runtime.PromptSpec, error) {
	reg := runtime.NewRegistry()
	for _, m := range stubbed(mods) {
		if err := reg.Add(m); err != nil {
			return nil, fmt.Errorf("host module %s: %w", m.Name, err)
		}
	}
	out := map[string][]runtime.PromptSpec{}
	for _, name := range set.Names() {
		var got *runtime.Procedure
		_, err := runtime.Run(ctx, set.Procedures[name], runtime.RunOptions{Registry: reg, Config: cfg,
			Libraries: set.Libraries, Timeout: 5 * time.Second, Args: map[string]any{},
			BeforeRun: func(p *runtime.Procedure) error { got = p; return errPrompts }})
		if got == nil {
			return nil, fmt.Errorf("procedure %s: %w", name, err)
		}
		out[name] = got.Prompts
	}
	return out, nil
}
