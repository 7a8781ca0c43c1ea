// Package runtime is the Lua host. It owns the sandbox scripts run in, the
// compiling and caching of scripts, procedure metadata and API levels, the
// registry bindings add their modules to, deadlines, and the observation of
// every call a script makes into Go, which transcripts are written from. It
// knows nothing of tokens: bindings build on it, never the other way round.
//
// # Sandbox
//
// A run gets a fresh state with base, table, string, math and a require
// that finds only registered modules. Reading a removed standard name (os,
// io, debug, coroutine, dofile, load, string.dump, package.loadlib, ...)
// raises "file.lua:LINE: os is not available in tokenrun scripts", through
// an __index on _G and on the string and package tables that answers only
// for those names: any other missing global is nil, as in plain Lua.
//
// # Limits
//
// gopher-lua checks the context only between VM instructions, has no
// allocator hook, and its compiler recurses without bound, so the host
// bounds what it cannot interrupt. Compile admits source first (Admit:
// size, nesting, expression length). The string functions that match
// patterns, and table.sort, check the context as they go
// (internal/luapattern is gopher-lua's matcher adapted for that); every
// library call producing a string is capped at MaxCallOutput. A watchdog
// samples the heap while runs go on and stops one over its MemoryLimit
// (memory.go explains the rules).
//
// # Redaction
//
// A Func names its secret parameters, results and option fields in Secret.
// The call wrapper replaces them with "<secret>" while converting the call
// for the observer, so the raw values never reach it, and cuts the secret
// strings out of any error the call raises, observer or not.
//
// # Errors
//
// Every failure of a script is a *ScriptError reading "file.lua:LINE:
// message (procedure NAME VERSION)", with the Lua traceback kept apart for
// --debug. error({code=..., message=...}) and run returning nil, {code=...}
// set Code; a run stopped by its context wraps context.DeadlineExceeded or
// context.Canceled, one stopped by the watchdog ErrMemoryLimit.
package runtime
