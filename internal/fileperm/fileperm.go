// Package fileperm says whether a file's mode lets users other than its owner at it, for
// the warnings about files that hold secrets (PIN files, answers and batch lists).
//
// Only Unix has such mode bits. Windows has ACLs: Go makes a file's mode up from its
// read-only attribute (0666, or 0444), so a mode check there would warn about every file,
// tokenrun's own included, and tell a Windows client to run chmod. Off Unix these report
// false; a home directory's ACL already keeps other users out of a client's files there.
package fileperm

import "io/fs"

// OthersMayRead reports whether the group or others may read or write a file of mode m;
// always false where there are no mode bits (modeBits, per system).
func OthersMayRead(m fs.FileMode) bool { return modeBits && m.Perm()&0o077 != 0 }
