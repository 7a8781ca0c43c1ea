//go:build !unix

package fileperm

// modeBits: off Unix the mode is made up (see the package comment).
const modeBits = false
