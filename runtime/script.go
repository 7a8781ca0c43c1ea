package runtime

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Script is a compiled Lua chunk. Its prototype is read-only once compiled,
// so one Script serves any number of runs, concurrently.
type Script struct {
	name  string
	proto *lua.FunctionProto
	sum   [sha256.Size]byte
}

// Name is the chunk name used in every message about the script.
func (s *Script) Name() string { return s.name }

// SHA256 identifies the (name, content) pair the script was compiled from.
func (s *Script) SHA256() [sha256.Size]byte { return s.sum }

// maxCached bounds the compile cache. A process compiles a handful of
// shipped procedures; the bound only matters for something like a file
// watcher recompiling edits forever.
const maxCached = 256

var cache struct {
	sync.Mutex
	m map[[sha256.Size]byte]*Script
}

// Compile parses and compiles src, or returns the Script already compiled
// for the same name and content: parsing costs about ten times more than
// running a small procedure. A syntax error, or source Admit refuses, is a
// *ScriptError whose text is "name:LINE: message".
func Compile(name string, src []byte) (*Script, error) {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(src)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])

	cache.Lock()
	s, ok := cache.m[sum]
	cache.Unlock()
	if ok {
		return s, nil
	}

	// Every compile goes through here, and Admit first: the compiler can
	// crash the process on hostile source.
	if err := Admit(name, src); err != nil {
		return nil, err
	}
	chunk, err := parse.Parse(bytes.NewReader(src), name)
	if err != nil {
		return nil, syntaxError(name, src, err)
	}
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		return nil, syntaxError(name, src, err)
	}
	s = &Script{name: name, proto: proto, sum: sum}

	cache.Lock()
	defer cache.Unlock()
	if prev, ok := cache.m[sum]; ok {
		return prev, nil
	}
	if cache.m == nil {
		cache.m = map[[sha256.Size]byte]*Script{}
	}
	if len(cache.m) >= maxCached {
		for k := range cache.m {
			delete(cache.m, k)
			break
		}
	}
	cache.m[sum] = s
	return s, nil
}

func syntaxError(name string, src []byte, err error) error {
	e := &ScriptError{File: name, Message: err.Error()}
	var pe *parse.Error
	var ce *lua.CompileError
	switch {
	case errors.As(err, &pe):
		if pe.Pos.Line == parse.EOF {
			e.Line = bytes.Count(src, []byte("\n")) + 1
			e.Message = fmt.Sprintf("%s at end of file", pe.Message)
		} else {
			e.Line = pe.Pos.Line
			e.Message = fmt.Sprintf("%s near '%s'", pe.Message, pe.Token)
		}
	case errors.As(err, &ce):
		e.Line = ce.Line
		e.Message = ce.Message
	}
	e.Cause = err
	return e
}
