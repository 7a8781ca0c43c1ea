package runtime

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// Func is one Go function exposed to Lua, either as a module function or as a
// method of a userdata type.
type Func struct {
	Name string
	Fn   lua.LGFunction
	Doc  string
	// Since is the API level that introduced the function; 0 means 1. A
	// procedure that declares an older api gets a clear error when it calls
	// the function instead of silently depending on a newer host.
	Since int
	// Args and Returns are short signatures for generated references, written
	// as comma-separated "name: type" items ("pin: string, opts?: table").
	// The names double as the vocabulary of Secret, so keep them accurate.
	Args, Returns string
	// Secret names parameters (from Args), results (from Returns) and option
	// table fields whose values must never reach an observer or an error
	// message. A name is matched as a positional parameter or result when
	// Args or Returns lists it, and as a table field key at any depth of any
	// table argument or result in every case.
	Secret []string
}

// Type is a userdata type: Name is also its metatable name in the Lua
// registry, so it must be "module.TypeName".
type Type struct {
	Name    string
	Doc     string
	Methods []Func
	// Fields, when set, gives the handle's read-only data fields (key.id, key.label), so
	// a handle reads like a plain table yet stays a handle other bindings can resolve.
	// It is called with the userdata's Go value on each field read; methods win over
	// fields of the same name.
	Fields func(v any) map[string]any
	// FieldNames lists the keys Fields returns, for generated references.
	FieldNames []string
}

// Module is what a binding registers: the table require(Name) returns.
type Module struct {
	Name  string
	Doc   string
	Funcs []Func
	Types []Type
	// Values are constants placed in the module table; each must be
	// convertible by ToLua. They are converted afresh for every run because
	// Lua tables belong to one state.
	Values map[string]any
}

// Registry holds the modules scripts may require. It is built once, before
// the first Run, and then only read; Add is safe to call concurrently with
// Run but modules added during a run are not visible to it.
type Registry struct {
	mu    sync.RWMutex
	mods  map[string]*boundModule
	types map[string]*boundType
	names []string // sorted module names, for error messages
}

// boundModule is a Module with everything a run needs precomputed, so that
// loading it into a fresh state does no parsing or validation.
type boundModule struct {
	mod    Module
	funcs  []*boundFunc
	types  []*boundType
	values map[string]any
}

type boundType struct {
	name    string
	module  string
	methods []*boundFunc
	fields  func(v any) map[string]any
}

type boundFunc struct {
	module string
	typ    string // metatable name for methods, "" for module functions
	name   string
	qname  string // "token.wait" or "token.Token:login", for messages
	fn     lua.LGFunction
	since  int
	self   bool // a method: stack index 1 is self, not an Args parameter

	// Stack indices of secret parameters and result positions (0-based from
	// the first result) of secret results; secretKeys applies inside tables.
	secretArgs    []int
	secretResults []int
	secretKeys    map[string]struct{}
}

func (b *boundFunc) hasSecrets() bool { return len(b.secretKeys) > 0 }

// reservedModules are names scripts already reach through the standard
// library or that the sandbox refuses; a binding taking one of them would
// either be shadowed or reopen what the sandbox closed.
var reservedModules = map[string]bool{
	"_G": true, "string": true, "table": true, "math": true, "package": true,
	"os": true, "io": true, "debug": true, "coroutine": true, "channel": true,
}

var (
	moduleNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	funcNameRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	typeNameRe   = regexp.MustCompile(`^[A-Z][A-Za-z0-9_]*$`)
)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{mods: map[string]*boundModule{}, types: map[string]*boundType{}}
}

// Add registers a module. Every problem a binding author can make (a
// duplicate, a nil function, a secret that names nothing usable, a constant
// Lua cannot hold) is reported here rather than when a script runs.
func (r *Registry) Add(m Module) error {
	if !moduleNameRe.MatchString(m.Name) {
		return fmt.Errorf("add module %q: name must match %s", m.Name, moduleNameRe)
	}
	if reservedModules[m.Name] {
		return fmt.Errorf("add module %q: name is reserved for the standard library", m.Name)
	}
	bm := &boundModule{mod: m, values: m.Values}
	seen := map[string]bool{}
	for i := range m.Funcs {
		b, err := bindFunc(m.Name, "", &m.Funcs[i])
		if err != nil {
			return fmt.Errorf("add module %q: %w", m.Name, err)
		}
		if seen[b.name] {
			return fmt.Errorf("add module %q: function %q is defined twice", m.Name, b.name)
		}
		seen[b.name] = true
		bm.funcs = append(bm.funcs, b)
	}
	for k, v := range m.Values {
		if !funcNameRe.MatchString(k) {
			return fmt.Errorf("add module %q: value name %q is not a Lua identifier", m.Name, k)
		}
		if seen[k] {
			return fmt.Errorf("add module %q: value %q has the same name as a function", m.Name, k)
		}
		if err := checkConvertible(v); err != nil {
			return fmt.Errorf("add module %q: value %q: %w", m.Name, k, err)
		}
	}
	typeSeen := map[string]bool{}
	for _, t := range m.Types {
		prefix := m.Name + "."
		if !strings.HasPrefix(t.Name, prefix) || !typeNameRe.MatchString(t.Name[len(prefix):]) {
			return fmt.Errorf("add module %q: type name %q must look like %q", m.Name, t.Name, prefix+"Name")
		}
		if typeSeen[t.Name] {
			return fmt.Errorf("add module %q: type %q is defined twice", m.Name, t.Name)
		}
		typeSeen[t.Name] = true
		bt := &boundType{name: t.Name, module: m.Name, fields: t.Fields}
		methodSeen := map[string]bool{}
		for i := range t.Methods {
			b, err := bindFunc(m.Name, t.Name, &t.Methods[i])
			if err != nil {
				return fmt.Errorf("add module %q: type %q: %w", m.Name, t.Name, err)
			}
			if methodSeen[b.name] {
				return fmt.Errorf("add module %q: type %q: method %q is defined twice", m.Name, t.Name, b.name)
			}
			methodSeen[b.name] = true
			bt.methods = append(bt.methods, b)
		}
		bm.types = append(bm.types, bt)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.mods[m.Name]; dup {
		return fmt.Errorf("add module %q: already registered", m.Name)
	}
	for _, bt := range bm.types {
		if _, dup := r.types[bt.name]; dup {
			return fmt.Errorf("add module %q: type %q is already registered", m.Name, bt.name)
		}
	}
	r.mods[m.Name] = bm
	for _, bt := range bm.types {
		r.types[bt.name] = bt
	}
	r.names = append(r.names, m.Name)
	sort.Strings(r.names)
	return nil
}

// Modules returns the registered modules sorted by name, for generated
// references and for listing what scripts may require.
func (r *Registry) Modules() []Module {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Module, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, r.mods[n].mod)
	}
	return out
}

func (r *Registry) module(name string) *boundModule {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.mods[name]
}

func (r *Registry) typ(name string) *boundType {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.types[name]
}

func (r *Registry) moduleNames() []string {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]string(nil), r.names...)
}

func bindFunc(module, typ string, f *Func) (*boundFunc, error) {
	kind := "function"
	if typ != "" {
		kind = "method"
	}
	if !funcNameRe.MatchString(f.Name) {
		return nil, fmt.Errorf("%s name %q is not a Lua identifier", kind, f.Name)
	}
	if f.Fn == nil {
		return nil, fmt.Errorf("%s %q has no Go function", kind, f.Name)
	}
	since := f.Since
	if since == 0 {
		since = 1
	}
	if since < 0 || since > APILevel {
		return nil, fmt.Errorf("%s %q: since = %d, but this host provides API levels 1 to %d", kind, f.Name, f.Since, APILevel)
	}
	b := &boundFunc{module: module, typ: typ, name: f.Name, fn: f.Fn, since: since, self: typ != ""}
	if typ == "" {
		b.qname = module + "." + f.Name
	} else {
		b.qname = typ + ":" + f.Name
	}
	if len(f.Secret) == 0 {
		return b, nil
	}
	params, err := signatureNames(f.Args)
	if err != nil {
		return nil, fmt.Errorf("%s %q: args: %w", kind, f.Name, err)
	}
	results, err := signatureNames(f.Returns)
	if err != nil {
		return nil, fmt.Errorf("%s %q: returns: %w", kind, f.Name, err)
	}
	b.secretKeys = map[string]struct{}{}
	first := 1
	if b.self {
		first = 2
	}
	for _, s := range f.Secret {
		if !funcNameRe.MatchString(s) {
			return nil, fmt.Errorf("%s %q: secret %q is not a parameter or field name", kind, f.Name, s)
		}
		b.secretKeys[s] = struct{}{}
		for i, p := range params {
			if p == s {
				b.secretArgs = append(b.secretArgs, first+i)
			}
		}
		for i, p := range results {
			if p == s {
				b.secretResults = append(b.secretResults, i)
			}
		}
	}
	return b, nil
}

// signatureNames extracts parameter names from "pin: string, opts?: table".
// A "..." item ends the positional list because later values have no name.
func signatureNames(sig string) ([]string, error) {
	sig = strings.TrimSpace(sig)
	if sig == "" {
		return nil, nil
	}
	var names []string
	for _, item := range strings.Split(sig, ",") {
		item = strings.TrimSpace(item)
		if strings.HasPrefix(item, "...") {
			break
		}
		name, _, _ := strings.Cut(item, ":")
		name = strings.TrimSuffix(strings.TrimSpace(name), "?")
		if !funcNameRe.MatchString(name) {
			return nil, fmt.Errorf("item %q does not start with a name", item)
		}
		names = append(names, name)
	}
	return names, nil
}
