package soft

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/tokenrun/tokenrun/token"
)

// OpenRoot watches root, a directory of token directories: each subdirectory that holds a
// token's state is a token, found at every look (Tokens, Open), so a directory that appears
// is a token plugged in and one removed is a token unplugged, as on a USB hub. It is for
// batches of software tokens and their tests (`--soft-root`); no token is ever created here:
// a subdirectory without a state file (one being copied in) is not a token yet. A token's
// slot number is the order it was first seen in and stays its own.
func OpenRoot(opts Options, root string) (*Provider, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("software token root %s: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("software token root %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("software token root %s is not a directory: %w", root, token.ErrInvalidInput)
	}
	return &Provider{opts: opts, root: abs}, nil
}

// current is the slots known now.
func (p *Provider) current() []*slot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*slot(nil), p.slots...)
}

// scan is the slots to look at: Open's fixed set, or a root's directories holding a token.
func (p *Provider) scan() ([]*slot, error) {
	if p.root == "" {
		return p.current(), nil
	}
	entries, err := os.ReadDir(p.root)
	if err != nil {
		return nil, fmt.Errorf("software token root %s: %w", p.root, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	p.mu.Lock()
	defer p.mu.Unlock()
	known := map[string]bool{}
	for _, s := range p.slots {
		known[s.store.dir] = true
	}
	for _, e := range entries {
		if !e.IsDir() { // a link or a file is no token directory: left alone
			continue
		}
		dir := filepath.Join(p.root, e.Name())
		if known[dir] {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, stateName)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // not a token (yet)
			}
			return nil, err
		}
		p.slots = append(p.slots, &slot{index: len(p.slots), store: store{dir: dir}})
	}
	// The unplugged stay: their directory reads as gone until it is back.
	out := make([]*slot, 0, len(p.slots))
	for _, s := range p.slots {
		if _, err := os.Lstat(s.store.dir); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}
