package runner

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	bindpolicy "github.com/tokenrun/tokenrun/bindings/policy"
	"github.com/tokenrun/tokenrun/bundle"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
)

// Home is TOKENRUN_HOME, or tokenrun under the user's config directory: where journals,
// transcripts, the safety floor's files and installed bundles live.
func Home() (string, error) {
	if h := os.Getenv("TOKENRUN_HOME"); h != "" {
		return h, nil
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return "", UsageError{fmt.Errorf("no data directory: set TOKENRUN_HOME: %w", err)}
	}
	return filepath.Join(cfg, "tokenrun"), nil
}

// OpenJournal opens the enrollment journals under the data directory.
func OpenJournal() (*journal.Store, error) {
	home, err := Home()
	if err != nil {
		return nil, err
	}
	return journal.Open(filepath.Join(home, "journal"))
}

// InstalledOrEmbedded is the active installed bundle, verified against its signed manifest
// before any of it is loaded; when it is refused, the previous one; else the embedded set.
// Every refusal is a warning on warn: a bank must notice that its scripts are not the ones
// running.
func InstalledOrEmbedded(warn io.Writer) (*scripts.Set, error) {
	_, set, err := InstalledBundle(warn)
	return set, err
}

// InstalledBundle is InstalledOrEmbedded with the verified bundle the set came from (nil for
// the embedded set).
func InstalledBundle(warn io.Writer) (*bundle.Bundle, *scripts.Set, error) {
	embedded := func() (*bundle.Bundle, *scripts.Set, error) {
		set, err := scripts.Embedded()
		return nil, set, err
	}
	home, err := Home()
	if err != nil {
		return embedded()
	}
	store := bundle.OpenStore(home)
	if active, err := store.Active(); err == nil && active == "" {
		return embedded() // nothing installed: no trust needed, no warning
	}
	keys, err := RunKeys(store, warn)
	if err != nil {
		fmt.Fprintf(warn, "warning: %v\n", err)
	}
	b, err := store.LoadActive(keys, warn)
	if b != nil {
		return b, b.Set, nil
	}
	if err != nil {
		fmt.Fprintf(warn, "warning: running the embedded scripts instead of the installed ones\n")
	}
	return embedded()
}

// RunKeys is the keyring procedure runs check installed bundles against, as
// InstalledOrEmbedded gathers it: the built-in and system keys (warnings on warn) and the
// keys remembered from --trust at install.
func RunKeys(store *bundle.Store, warn io.Writer) (bundle.Keyring, error) {
	keys := bundle.SystemKeys(warn)
	user, err := store.UserKeys()
	keys.Add(user...)
	return keys, err
}

// LoadSet is the scripts tree in dir (--scripts), with a warning on warn that it is
// unsigned; "" is the verified active installed bundle, else the shipped scripts tree.
func LoadSet(dir string, warn io.Writer) (*scripts.Set, error) {
	if dir == "" {
		return InstalledOrEmbedded(warn)
	}
	fmt.Fprintf(warn, "warning: running unsigned scripts from %s\n", dir)
	s, err := scripts.Load(os.DirFS(dir), dir)
	if err != nil {
		return nil, UsageError{err}
	}
	return s, nil
}

// ProcedureOptions name a procedure of a scripts set and the region it runs with.
type ProcedureOptions struct {
	Name    string   // the procedure: enroll, change_pin
	Scripts string   // a scripts tree to run unsigned (--scripts); "" for the installed or shipped one
	Region  string   // the region's name (--region): region.DefaultName unless one is chosen
	Set     []string // region overrides, KEY=VALUE (--set)
	Lang    string   // kk, ru, en (--lang); "" for the region's
	Warn    io.Writer
}

// Procedure is a procedure ready to run: its script and libraries, the set it comes from,
// its region (with the overrides), the region's configuration (the script's ctx.config) and
// the policy module that checks what people type against that region.
type Procedure struct {
	Name   string
	Script *runtime.Script
	Set    *scripts.Set
	Region *region.Region
	Config map[string]any
	Policy runtime.Module
}

// LoadProcedure finds o.Name in the set o names and loads its region.
func LoadProcedure(o ProcedureOptions) (*Procedure, error) {
	set, err := LoadSet(o.Scripts, o.Warn)
	if err != nil {
		return nil, err
	}
	script, ok := set.Procedures[o.Name]
	if !ok {
		return nil, UsageError{fmt.Errorf("the scripts tree %s has no procedure %s", set.Source, o.Name)}
	}
	cfg, policy, r, err := RegionConfig(set, o.Region, o.Set, o.Lang)
	if err != nil {
		return nil, err
	}
	return &Procedure{Name: o.Name, Script: script, Set: set, Region: r, Config: cfg, Policy: policy}, nil
}

// Messages is the procedure's message catalog, in the run's language.
func (p *Procedure) Messages() map[string]string {
	m, _ := p.Config["messages"].(map[string]string)
	return m
}

// RegionConfig loads the region name of set with the overrides sets and the language lang
// ("": the region's): the script's ctx.config, the policy module that checks what people
// type against it, and the region itself.
func RegionConfig(set *scripts.Set, name string, sets []string, lang string) (map[string]any, runtime.Module, *region.Region, error) {
	r, err := region.Load(set.FS, name)
	if err != nil {
		return nil, runtime.Module{}, nil, UsageError{err}
	}
	if err := r.Set(sets...); err != nil {
		return nil, runtime.Module{}, nil, UsageError{err}
	}
	cfg, messages, err := RegionMap(r, lang)
	if err != nil {
		return nil, runtime.Module{}, nil, UsageError{err}
	}
	return cfg, bindpolicy.Module(r, messages), r, nil
}

// RegionMap is ctx.config of a run with region r in language lang ("": the region's), and
// its message catalog.
func RegionMap(r *region.Region, lang string) (map[string]any, map[string]string, error) {
	if lang == "" {
		lang = r.Language
	}
	messages, err := r.Catalog(lang)
	if err != nil {
		return nil, nil, err
	}
	cfg := r.Map()
	cfg["language"] = lang
	cfg["messages"] = messages
	return cfg, messages, nil
}

// LoadScript reads FILE.lua, or a procedure by name from the verified installed bundle or the
// shipped set (warnings on warn), with that set's libraries.
func LoadScript(arg string, warn io.Writer) (*runtime.Script, map[string]*runtime.Script, error) {
	src, err := readfile.Read(arg, readfile.Script)
	if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(arg, "/\\") {
		set, serr := InstalledOrEmbedded(warn)
		if serr != nil {
			return nil, nil, serr
		}
		name := strings.TrimSuffix(arg, ".lua")
		if sc, ok := set.Procedures[name]; ok {
			return sc, set.Libraries, nil
		}
		if b, e := readfile.ReadFS(set.FS, name+".lua", readfile.Script); e == nil {
			sc, err := runtime.Compile(name+".lua", b)
			return sc, set.Libraries, err
		}
	}
	if err != nil {
		return nil, nil, UsageError{fmt.Errorf("script %s: %w", arg, err)}
	}
	sc, err := runtime.Compile(arg, src)
	return sc, nil, err
}
