// Package scripts holds the shipped procedures, embedded into the binary as the default
// set. Banks export the tree, adapt it, and run their copy with --scripts.
package scripts

import "embed"

// FS is the shipped scripts tree.
//
//go:embed *.lua manifest.yaml regions messages lib demo
var FS embed.FS
