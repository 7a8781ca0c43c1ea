// Package flock holds whole-file advisory locks that the kernel releases when the process
// dies, so a lock can never outlive a killed run. Locks belong to the open file, so two
// opens in one process exclude each other just as two processes do.
package flock

import "os"

// TryLock takes the lock on f without blocking; ok is false when another open file holds a
// conflicting lock.
func TryLock(f *os.File, exclusive bool) (ok bool, err error) { return tryLock(f, exclusive) }
