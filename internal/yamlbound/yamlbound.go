// Package yamlbound bounds what a YAML document costs once its aliases are followed.
//
// yaml.v3 parses a document into nodes in time and memory proportional to its text, but an
// alias is a pointer to its anchor's node: a walk that follows aliases (every decoder of
// answers and region files does) visits the anchor's subtree once per use. A 53 kB region
// file with one anchor of 3,000 keys used 3,000 times is nine million nodes to such a walk.
// Check walks the document as its decoder will, aliases expanded, and stops at the first
// limit passed, so the cost of the check itself is bounded by the limits.
package yamlbound

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Limits bound one document with its aliases expanded.
type Limits struct {
	Nodes   int // nodes visited
	Bytes   int // bytes of scalar text (keys and values)
	Aliases int // alias uses
}

// Config is for the files a person writes by hand: answers files, region files, message
// catalogs. The shipped default region is about 1,500 nodes and 30 kB; a catalog about
// 600 nodes. Ten times the largest real file, and far below what hurts: 100,000 nodes cost a
// decoder a few milliseconds.
var Config = Limits{Nodes: 100_000, Bytes: 4 << 20, Aliases: 1_000}

// Error says which limit a document passes and where the walk was.
type Error struct {
	Name  string // the file, for the message
	Line  int    // where the limit was passed
	Limit string // "nodes", "bytes", "aliases"
	Max   int
}

func (e *Error) Error() string {
	what := map[string]string{
		"nodes":   "%d values and keys",
		"bytes":   "%d bytes of text",
		"aliases": "%d alias (*name) uses",
	}[e.Limit]
	return fmt.Sprintf("%s:%d: the YAML, with its aliases expanded, holds more than "+what+
		" (anchors used over and over?): a real file is far smaller", e.Name, e.Line, e.Max)
}

// Check walks n (a document or any node) with aliases expanded and returns an *Error at the
// first limit passed.
func Check(name string, n *yaml.Node, lim Limits) error {
	w := walker{lim: lim, name: name}
	w.walk(n, 0)
	return w.err
}

type walker struct {
	lim                   Limits
	name                  string
	nodes, bytes, aliases int
	err                   error
}

// maxDepth bounds the recursion, aliases included: yaml.v3 limits nesting while parsing,
// but an anchor nested through its own aliases can go deeper than the text.
const maxDepth = 1000

func (w *walker) walk(n *yaml.Node, depth int) {
	for n != nil && w.err == nil {
		w.nodes++
		if w.nodes > w.lim.Nodes {
			w.fail(n, "nodes", w.lim.Nodes)
			return
		}
		if depth > maxDepth {
			w.fail(n, "nodes", w.lim.Nodes)
			return
		}
		switch n.Kind {
		case yaml.AliasNode:
			w.aliases++
			if w.aliases > w.lim.Aliases {
				w.fail(n, "aliases", w.lim.Aliases)
				return
			}
			n = n.Alias
			depth++
			continue
		case yaml.ScalarNode:
			w.bytes += len(n.Value)
			if w.bytes > w.lim.Bytes {
				w.fail(n, "bytes", w.lim.Bytes)
			}
			return
		}
		for _, c := range n.Content {
			w.walk(c, depth+1)
			if w.err != nil {
				return
			}
		}
		return
	}
}

func (w *walker) fail(n *yaml.Node, limit string, max int) {
	w.err = &Error{Name: w.name, Line: n.Line, Limit: limit, Max: max}
}
