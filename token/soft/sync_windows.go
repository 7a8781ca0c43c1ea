//go:build windows

package soft

// syncDir does nothing: Windows has no directory sync. NTFS journals the rename, so a crash
// may lose the newest write but never leaves a torn state file.
func syncDir(string) error { return nil }

// noFollow is 0: store.lock checks for a link with Lstat first (Windows has no O_NOFOLLOW).
const noFollow = 0
