package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokenrun/tokenrun/bindings/all"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/scripts/check"
)

// promptTable is the README's table of prompt ids, generated from the prompts the procedures
// of set declare (choices_from read from the default region), one row per procedure command.
func promptTable(ctx context.Context, set *scripts.Set) (string, error) {
	r, err := region.Load(set.FS, region.DefaultName)
	if err != nil {
		return "", err
	}
	cfg := r.Map()
	declared, err := check.Prompts(ctx, set, cfg, all.Modules())
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| procedure | prompt ids |\n|---|---|\n")
	// sign-request is the agent's procedure (tokenrun agent runs it per request): its
	// prompts are the consent page's.
	rows := append(procedures[:len(procedures):len(procedures)], procedure{command: "sign-request", name: "sign_request"})
	for _, p := range rows {
		specs, ok := declared[p.name]
		if !ok {
			continue
		}
		var cells []string
		for _, s := range specs {
			var notes []string
			choices := s.Choices
			if s.ChoicesFrom != "" {
				choices = runner.ConfigIDs(cfg[s.ChoicesFrom])
			}
			if len(choices) > 0 {
				notes = append(notes, "`"+strings.Join(choices, "`, `")+"`")
			}
			if s.Optional {
				notes = append(notes, "optional")
			}
			if s.HumanOnly {
				notes = append(notes, "a person only")
			}
			if s.Note != "" {
				notes = append(notes, s.Note)
			}
			cell := "`" + s.ID + "` (" + s.Kind
			if len(notes) > 0 {
				cell += "; " + strings.Join(notes, "; ")
			}
			cells = append(cells, cell+")")
		}
		fmt.Fprintf(&b, "| %s | %s |\n", p.command, strings.Join(cells, ", "))
	}
	return b.String(), nil
}
