package runtime

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// gopher-lua has no allocator hook (its issue #230), so a script's memory is
// bounded around the VM, in three layers:
//
//   - no library function produces more than MaxCallOutput bytes in one call
//     (string.rep, string.format, string.gsub, table.concat, ...), so one call
//     cannot ask for gigabytes at once;
//   - a watchdog samples the process's heap every watchdogInterval while a run
//     is active and cancels the run's context when the heap is over the run's
//     MemoryLimit; the VM stops at its next instruction and the run fails with
//     "the script used more than N MiB of memory". What slips past it is at
//     most one VM instruction's allocation, which the per-call cap bounds for
//     library calls and the limit itself bounds for the concatenation
//     operator (s..s makes at most twice what is live);
//   - debug.SetMemoryLimit is raised to the largest active limit (unless
//     GOMEMLIMIT or the program set one), so the collector works harder near
//     the limit instead of letting garbage pile up past it.
//
// The limit is on the process's heap, not a per-state count: tokenrun runs
// one procedure per process, and what its bindings allocate for it counts too.
const (
	// DefaultMemoryLimit is the heap a run may use unless its options say
	// otherwise: the shipped procedures need a few MiB; 128 MiB leaves room
	// for documents a bank's procedure signs or checks, and keeps even a
	// doubling concatenation that crosses it under 512 MiB.
	DefaultMemoryLimit = 128 << 20
	// MaxMemoryLimit is the ceiling a region or caller may raise the limit to.
	MaxMemoryLimit = 1 << 30
	// MaxCallOutput is the most one library call may produce (one string
	// from string.rep, format, gsub, upper, lower, reverse or table.concat):
	// large enough for any document a procedure handles, small enough that
	// the call's allocation overshoots the memory limit by little.
	MaxCallOutput = 16 << 20
	// MaxStringRep is the cap string.rep has always had; it is MaxCallOutput.
	MaxStringRep = MaxCallOutput

	// watchdogInterval is how often the heap is sampled during a run: a
	// sample costs well under a microsecond, and a string-doubling loop
	// needs tens of milliseconds per step at sizes that matter.
	watchdogInterval = 5 * time.Millisecond
	// watchdogIdle is how long the watchdog goroutine waits without runs
	// before it exits, so back-to-back runs do not each start one.
	watchdogIdle = time.Second
	// settleTime is how long a heap over the limit may wait for a
	// collection to say whether it is garbage before the watchdog collects.
	settleTime = 50 * time.Millisecond
)

// ErrMemoryLimit is the cause (errors.Is) of a run stopped by the watchdog.
var ErrMemoryLimit = errors.New("memory limit exceeded")

type memoryError struct{ limit int64 }

func (e *memoryError) Error() string {
	return fmt.Sprintf("the script used more than %d MiB of memory", e.limit>>20)
}

func (e *memoryError) Is(target error) bool { return target == ErrMemoryLimit }

// memoryLimit resolves RunOptions.MemoryLimit.
func memoryLimit(n int64) (int64, error) {
	switch {
	case n == 0:
		return DefaultMemoryLimit, nil
	case n < 1<<20 || n > MaxMemoryLimit:
		return 0, fmt.Errorf("memory limit %d bytes is out of range: it must be between 1 MiB and %d MiB", n, MaxMemoryLimit>>20)
	}
	return n, nil
}

type watched struct {
	limit  int64
	cancel context.CancelCauseFunc
	fired  atomic.Bool // cancelled already
	// Only the watchdog touches these. seenCycles is the GC count when it
	// first saw the run; overSince is when the heap went over the limit
	// without the live heap being over, overCycles the GC count then.
	seen       bool
	seenCycles uint64
	overSince  time.Time
	overCycles uint64
}

var watchdog struct {
	sync.Mutex
	runs    map[*watched]struct{}
	running bool
	// soft is the soft memory limit this package set, 0 if none: it is only
	// ever raised, and never set over one the user chose.
	soft    int64
	userSet bool
	checked bool
}

// watchMemory puts a run under the watchdog until the returned stop is called.
func watchMemory(limit int64, cancel context.CancelCauseFunc) (stop func()) {
	w := &watched{limit: limit, cancel: cancel}
	watchdog.Lock()
	if watchdog.runs == nil {
		watchdog.runs = map[*watched]struct{}{}
	}
	watchdog.runs[w] = struct{}{}
	if !watchdog.checked {
		watchdog.checked = true
		watchdog.userSet = debug.SetMemoryLimit(-1) != int64(^uint64(0)>>1)
	}
	if !watchdog.userSet && limit > watchdog.soft {
		// SetMemoryLimit stops the world: called only when the value rises.
		watchdog.soft = limit
		debug.SetMemoryLimit(limit)
	}
	if !watchdog.running {
		watchdog.running = true
		go watchLoop()
	}
	watchdog.Unlock()
	return func() {
		watchdog.Lock()
		delete(watchdog.runs, w)
		watchdog.Unlock()
	}
}

func watchLoop() {
	t := time.NewTicker(watchdogInterval)
	defer t.Stop()
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	pace := debug.SetMemoryLimit(-1)
	idleSince := time.Now()
	var fire []*watched
	for now := range t.C {
		watchdog.Lock()
		if len(watchdog.runs) == 0 {
			if now.Sub(idleSince) > watchdogIdle {
				watchdog.running = false
				watchdog.Unlock()
				return
			}
			watchdog.Unlock()
			continue
		}
		idleSince = now
		if watchdog.soft > 0 {
			pace = watchdog.soft
		}
		metrics.Read(samples)
		heap := int64(samples[0].Value.Uint64())
		live := int64(samples[1].Value.Uint64())
		cycles := samples[2].Value.Uint64()
		fire = fire[:0]
		collect := false
		for w := range watchdog.runs {
			if w.fired.Load() {
				continue
			}
			if !w.seen {
				w.seen, w.seenCycles = true, cycles
			}
			// The live heap counts once a collection has finished during
			// the run: before, it may be an earlier run's.
			liveOver := cycles > w.seenCycles && live > w.limit
			// Garbage can pile up to about the soft limit the collector
			// paces at; a quarter past it and past the run's limit, the heap
			// is the run's. Waiting for a collection there would let a
			// doubling concatenation double again: the collector cannot
			// stop the world while the VM copies a large string.
			hard := max(w.limit, pace) * 5 / 4
			switch {
			case liveOver || heap > hard:
				fire = append(fire, w)
			case heap > w.limit:
				// Perhaps garbage: a collection, paced by the soft limit,
				// settles it within milliseconds. With none (a higher soft
				// limit set elsewhere), collect here.
				if w.overSince.IsZero() || cycles != w.overCycles {
					w.overSince, w.overCycles = now, cycles
				} else if now.Sub(w.overSince) > settleTime {
					collect = true
				}
			default:
				w.overSince = time.Time{}
			}
		}
		watchdog.Unlock()
		if collect {
			goruntime.GC()
			metrics.Read(samples)
			live = int64(samples[1].Value.Uint64())
			watchdog.Lock()
			for w := range watchdog.runs {
				if !w.fired.Load() && live > w.limit {
					fire = append(fire, w)
				}
			}
			watchdog.Unlock()
		}
		for _, w := range fire {
			w.fired.Store(true)
			w.cancel(&memoryError{limit: w.limit})
		}
	}
}
