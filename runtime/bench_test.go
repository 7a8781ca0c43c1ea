package runtime

import (
	"context"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

const callLoop = `
local ctx = ...
local add = require("probe").add
local n = 0
for i = 1, ctx.args.n do n = add(n, 1) end
return n`

// BenchmarkBindingCall measures one Lua-to-Go call through the registry
// wrapper: b.N calls in a Lua loop inside one run, so the run's fixed cost
// is spread over all of them.
func BenchmarkBindingCall(b *testing.B) {
	s, err := Compile("bench.lua", []byte(callLoop))
	if err != nil {
		b.Fatal(err)
	}
	reg := probeRegistry(b)
	for _, bc := range []struct {
		name string
		obs  Observer
	}{
		{"no_observer", nil},
		{"observer", ObserverFunc(func(CallEvent) {})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			res, err := Run(context.Background(), s, RunOptions{Registry: reg, Observer: bc.obs, Args: map[string]any{"n": b.N}})
			if err != nil {
				b.Fatal(err)
			}
			if res.Values[0] != float64(b.N) {
				b.Fatalf("got %v", res.Values[0])
			}
		})
	}
	// The same loop on a bare gopher-lua state, for the wrapper's overhead.
	b.Run("bare_gopher_lua", func(b *testing.B) {
		L := lua.NewState()
		defer L.Close()
		L.SetGlobal("add", L.NewFunction(func(L *lua.LState) int {
			L.Push(L.CheckNumber(1) + L.CheckNumber(2))
			return 1
		}))
		fn, err := L.LoadString("local n = 0; for i = 1, N do n = add(n, 1) end; return n")
		if err != nil {
			b.Fatal(err)
		}
		L.SetGlobal("N", lua.LNumber(b.N))
		b.ReportAllocs()
		b.ResetTimer()
		L.Push(fn)
		L.Call(0, 1)
	})
}

// fixedCostProcedure is a typical small procedure: metadata, a local
// helper, config reads, a handful of binding calls and a result table.
const fixedCostProcedure = `
local probe = require("probe")

local M = {}

local function check_label(label)
  if type(label) ~= "string" or #label == 0 then
    error("label must be a non-empty string", 2)
  end
  return label
end

local function describe(h)
  return string.format("%s (%s)", h:label(), tostring(h))
end

function M.open_all(labels)
  local out = {}
  for i, label in ipairs(labels) do
    local h = probe.open{ label = check_label(label) }
    out[#out + 1] = describe(h)
  end
  return out
end

return {
  name = "bench_fixed_cost",
  version = "1.0.0",
  api = 1,
  description = "A procedure of about fifty lines for measuring a run's fixed cost",
  run = function(ctx)
    local region = ctx.config.region
    local opened = M.open_all({ "one", "two" })
    local ok, err = probe.fail()
    if ok then
      error("expected a failure")
    end
    local total = 0
    for i = 1, 10 do
      total = probe.add(total, i)
    end
    local h = probe.open{ label = region }
    h:login("1234", { so = false })
    return {
      region = region,
      opened = opened,
      code = err.code,
      total = total,
    }
  end,
}
`

// BenchmarkRunFixedCost measures a whole run of a cached compiled
// procedure: a fresh sandbox, module loading, the procedure, teardown.
func BenchmarkRunFixedCost(b *testing.B) {
	s, err := Compile("fixed.lua", []byte(fixedCostProcedure))
	if err != nil {
		b.Fatal(err)
	}
	reg := probeRegistry(b)
	cfg := map[string]any{"region": "kz", "ca": map[string]any{"url": "https://ca.example"}}
	for _, bc := range []struct {
		name string
		obs  Observer
	}{
		{"no_observer", nil},
		{"observer", ObserverFunc(func(CallEvent) {})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				res, err := Run(context.Background(), s, RunOptions{Registry: reg, Observer: bc.obs, Config: cfg})
				if err != nil {
					b.Fatal(err)
				}
				if res.Procedure == nil {
					b.Fatal("not a procedure")
				}
			}
		})
	}
}

// BenchmarkRunGuards measures what the memory watchdog and the bounded
// string library add to every run, apart from the noise of a whole run:
// registering with the watchdog (with the cancel-cause context it needs)
// and installing the replacement string and table functions in a state.
func BenchmarkRunGuards(b *testing.B) {
	b.Run("watchdog", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ctx, cancel := context.WithCancelCause(context.Background())
			stop := watchMemory(DefaultMemoryLimit, cancel)
			stop()
			cancel(nil)
			_ = ctx
		}
	})
	b.Run("string_library", func(b *testing.B) {
		L := lua.NewState(lua.Options{SkipOpenLibs: true})
		defer L.Close()
		L.Push(L.NewFunction(lua.OpenString))
		L.Call(0, 0)
		L.Push(L.NewFunction(lua.OpenTable))
		L.Call(0, 0)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			installStringLib(L)
		}
	})
}
