//go:build unix

package fileperm

// modeBits: a Unix file's mode says who else may read it.
const modeBits = true
