package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// peakLimit is what a memory attack may cost the process at most.
const peakLimit = 512 << 20

const (
	memoryStopped = "script stopped: the script used more than 128 MiB of memory"
	tooLong       = "result would exceed 16 MiB"
)

// memoryAttacks each try to make the process use gigabytes; each must end
// with its error within the deadline plus a second, the process's peak
// under peakLimit. They run in a child process each, so the peak is theirs.
var memoryAttacks = []struct {
	name, src, want string
}{
	{"doubling concatenation", `local s = string.rep("x", 16*1024*1024) while true do s = s .. s end`, memoryStopped},
	{"doubling from a byte", `local s = "x" while true do s = s .. s end`, memoryStopped},
	{"table.concat of 300 x 16 MiB", `local s = string.rep("x", 16*1024*1024) local t = {} for i = 1, 300 do t[i] = s end return table.concat(t)`, "table.concat: " + tooLong},
	{"table.concat with a long separator", `local t = {} for i = 1, 100 do t[i] = i end return table.concat(t, string.rep("-", 1024*1024))`, "table.concat: " + tooLong},
	{"thousands of %999999d", `return string.format(string.rep("%999999d", 5000), 1)`, "invalid format (width or precision too long"},
	{"format width from an argument", `return string.format("%*d", 1e9, 1)`, "invalid format"},
	{"format of many long strings", `local s = string.rep("x", 8*1024*1024) return string.format("%s%s%s%s", s, s, s, s)`, "string.format: " + tooLong},
	{"gsub 1 MiB with a 4 KiB replacement", `local s = string.rep("x", 1024*1024) return s:gsub("x", string.rep("y", 4096))`, "string.gsub: " + tooLong},
	{"gsub replacement from captures", `local s = string.rep("x", 4*1024*1024) return s:gsub("(x)", "%1%1%1%1%1%0%0%0")`, "string.gsub: " + tooLong},
	{"gsub replacement function", `local big = string.rep("y", 1024*1024) return string.rep("x", 1000):gsub(".", function() return big end)`, "string.gsub: " + tooLong},
	{"table of distinct 1 MiB strings", `local t = {} for i = 1, 1e6 do t[i] = string.rep("x", 1024*1024 - i) end`, memoryStopped},
	{"table growth", `local t = {} local i = 0 while true do i = i + 1 t[i] = {i, tostring(i)} end`, memoryStopped},
	{"string growth by appending", `local s = "" while true do s = s .. string.rep("y", 4*1024*1024) end`, memoryStopped},
	{"upper of a doubled string", `local s = string.rep("\255", 16*1024*1024) s = s .. s return s:upper()`, "string.upper: " + tooLong},
	{"rep of a long string", `local s = string.rep("ab", 8*1024*1024) return s:rep(2)`, "string.rep: " + tooLong},
}

type attackResult struct {
	Err     string
	Elapsed time.Duration
	Heap    uint64 // peak heap the child saw, sampled every millisecond
}

func TestMemoryAttacks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process per case")
	}
	for _, tt := range memoryAttacks {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryAttackChild$")
			cmd.Env = append(os.Environ(), "TOKENRUN_ATTACK="+tt.name)
			start := time.Now()
			out, err := cmd.Output()
			wall := time.Since(start)
			require.NoError(t, err, "child: %s", out)
			var res attackResult
			line := ""
			for _, l := range strings.Split(string(out), "\n") {
				if rest, ok := strings.CutPrefix(l, "ATTACK "); ok {
					line = rest
				}
			}
			require.NoError(t, json.Unmarshal([]byte(line), &res), "child: %s", out)
			rss, measured := peakRSS(cmd.ProcessState)
			t.Logf("%s in %s (child %s), peak heap %d MiB, peak RSS %d MiB", res.Err, res.Elapsed, wall, res.Heap>>20, rss>>20)
			assert.Contains(t, res.Err, tt.want)
			assert.Less(t, res.Elapsed, 6*time.Second, "deadline 5s plus 1s")
			assert.Less(t, res.Heap, uint64(peakLimit))
			if measured {
				assert.Less(t, rss, uint64(peakLimit))
			}
		})
	}
}

// TestMemoryAttackChild runs the attack TOKENRUN_ATTACK names (when
// TestMemoryAttacks starts it) and prints how it ended.
func TestMemoryAttackChild(t *testing.T) {
	name := os.Getenv("TOKENRUN_ATTACK")
	if name == "" {
		t.Skip("run by TestMemoryAttacks")
	}
	src := ""
	for _, tt := range memoryAttacks {
		if tt.name == name {
			src = tt.src
		}
	}
	require.NotEmpty(t, src, name)
	peak := make(chan uint64)
	stop := make(chan struct{})
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var max uint64
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			metrics.Read(s)
			max = maxU(max, s[0].Value.Uint64())
			select {
			case <-stop:
				peak <- max
				return
			case <-tk.C:
			}
		}
	}()
	goruntime.GC()
	start := time.Now()
	_, err := runSrc(t, src, RunOptions{Timeout: 5 * time.Second})
	res := attackResult{Elapsed: time.Since(start)}
	close(stop)
	res.Heap = <-peak
	if err != nil {
		res.Err = err.Error()
	}
	b, _ := json.Marshal(res)
	fmt.Printf("ATTACK %s\n", b)
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// timeAttacks are single Go calls that ran for minutes past the deadline.
// Each must stop with the timeout within a second of it, or (want "")
// finish.
var timeAttacks = []struct {
	name, src, want string
}{
	{"find with lazy backtracking", `return string.find(string.rep("a", 200000), ".-.-.-.-.-.-.-b")`, "script stopped: timed out after 1s"},
	{"match with captures", `return string.match(string.rep("a", 200000), "(.-)(.-)(.-)(.-)(.-)b")`, "script stopped: timed out after 1s"},
	{"greedy backtracking", `return string.find(string.rep("a", 200000), ".*.*.*.*.*b")`, "script stopped: timed out after 1s"},
	{"gmatch", `for x in string.rep("a", 100000):gmatch(".-.-.-.-b") do end`, "script stopped: timed out after 1s"},
	{"gsub with backtracking", `return string.rep("a", 100000):gsub(".-.-.-.-b", "")`, "script stopped: timed out after 1s"},
	{"balanced match over unbalanced input", `return string.rep("(", 300000):gsub("%b()", "")`, "script stopped: timed out after 1s"},
	{"back-reference", `return string.rep("a", 300000):find("(a*)%1b")`, "script stopped: timed out after 1s"},
	{"sorting two million strings", `local t = {} for i = 1, 2e6 do t[i] = tostring((i * 7919) % 1000003) end table.sort(t)`, "script stopped: timed out after 1s"},
	{"sorting with a comparator", `local t = {} for i = 1, 5e4 do t[i] = (i * 7919) % 1000003 end table.sort(t, function(a, b) return a > b end)`, ""},
	{"quadratic gsub now linear", `return #(('x'):rep(888810):gsub('x','%0%0'))`, ""},
	{"gsub of every byte", `return #(string.rep("ab", 2^20):gsub(".", "%0"))`, ""},
	{"deep pattern refused", `return string.find(string.rep("a", 20000), string.rep("a?", 20000))`, "pattern too complex"},
	{"too many captures", `return string.find("a", string.rep("(", 40) .. "a" .. string.rep(")", 40))`, "too many captures"},
	{"long greedy match is shallow", `return #string.rep("x", 8*1024*1024):match(".*")`, ""},
}

func TestLongCallsHonourTheDeadline(t *testing.T) {
	for _, tt := range timeAttacks {
		t.Run(tt.name, func(t *testing.T) {
			// What must finish gets room (the race detector is slow); what
			// must stop, a second.
			timeout := time.Second
			if tt.want == "" {
				timeout = 10 * time.Second
			}
			start := time.Now()
			_, err := runSrc(t, tt.src, RunOptions{Timeout: timeout})
			elapsed := time.Since(start)
			assert.Less(t, elapsed, timeout+time.Second, "deadline plus 1s")
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestSmallHoles(t *testing.T) {
	for _, tt := range []struct{ name, src, want string }{
		{"rep NaN", `return string.rep("x", 0/0)`, "repeat count must be a finite number, got nan"},
		{"rep inf", `return string.rep("x", 1/0)`, "repeat count must be a finite number, got inf"},
		{"rep -inf", `return ("x"):rep(-1/0)`, "repeat count must be a finite number, got -inf"},
		{"duration NaN", `return require("probe").wait{timeout = 0/0}`, "bad option 'timeout' to probe.wait (duration must be between 0 and 9223372036 seconds, got nan)"},
		{"duration inf", `return require("probe").wait{timeout = 1/0}`, "bad option 'timeout' to probe.wait (duration must be"},
		{"duration negative", `return require("probe").wait{timeout = -5}`, "bad option 'timeout' to probe.wait (duration must be"},
		{"duration negative string", `return require("probe").wait{timeout = "-5s"}`, "bad option 'timeout' to probe.wait (duration expected"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runSrc(t, tt.src, RunOptions{})
			se := scriptError(t, err)
			assert.Contains(t, se.Error(), tt.want)
			assert.Equal(t, 1, se.Line)
		})
	}
	// Counts below one still give "", as in Lua.
	res, err := runSrc(t, `return ("x"):rep(-3) .. ("x"):rep(0) .. ("x"):rep(2.9)`, RunOptions{})
	require.NoError(t, err)
	assert.Equal(t, []any{"xx"}, res.Values)
}

func TestMemoryLimitOption(t *testing.T) {
	s, err := Compile("t.lua", []byte(`
local t = {}
for i = 1, 64 do t[i] = string.rep("x", 1024*1024 - i) end
for i = 1, 3e6 do end -- time for the watchdog to look
return #t`))
	require.NoError(t, err)
	for _, n := range []int64{-1, 1, MaxMemoryLimit + 1} {
		_, err := Run(context.Background(), s, RunOptions{MemoryLimit: n})
		require.ErrorContains(t, err, "memory limit")
	}
	// 64 MiB of strings fits the default limit, not one of 32 MiB.
	res, err := Run(context.Background(), s, RunOptions{Timeout: 5 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, []any{float64(64)}, res.Values)
	_, err = Run(context.Background(), s, RunOptions{Timeout: 5 * time.Second, MemoryLimit: 32 << 20})
	se := scriptError(t, err)
	assert.Regexp(t, `^script stopped: the script used more than 32 MiB of memory at t.lua:[34]$`, se.Error())
	assert.ErrorIs(t, err, ErrMemoryLimit)
}
