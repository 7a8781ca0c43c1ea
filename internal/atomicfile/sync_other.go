//go:build !linux

package atomicfile

// syncAllData makes the content of every writer durable and closes their files; errs[i] is
// writers[i]'s failure (that writer is then aborted).
func syncAllData(writers []*Writer) []error { return fsyncAll(writers) }
