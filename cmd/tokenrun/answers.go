package main

import (
	"fmt"
	"io"

	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/ui"
)

// answersCheck is the runtime's BeforeRun for a run answered from a file: the answers are
// checked against the prompts the procedure declares before its run starts, so every unknown
// id, wrongly shaped answer and value out of range is reported at once (exit 2) before the
// token is touched. Nil when the front-end is not an answers file.
func answersCheck(fe ui.Frontend, config map[string]any, warn io.Writer) func(*runtime.Procedure) error {
	a, ok := fe.(*ui.Answers)
	if !ok {
		return nil
	}
	return func(p *runtime.Procedure) error {
		if p.Prompts == nil {
			return nil // a procedure that declares nothing is checked prompt by prompt
		}
		warnings, err := a.Check(p.Name, declaredPrompts(p.Prompts, config))
		for _, w := range warnings {
			fmt.Fprintf(warn, "warning: %s\n", w)
		}
		if err != nil {
			return usageError{err}
		}
		return nil
	}
}

var promptKinds = map[string]ui.Kind{"text": ui.Text, "secret": ui.Secret, "choice": ui.Choice, "confirm": ui.Confirm}

// declaredPrompts are the procedure's prompts for ui, a choices_from list read from the
// region's configuration (the ids of its items: validity's 1y, 3y).
func declaredPrompts(specs []runtime.PromptSpec, config map[string]any) []ui.Declared {
	out := make([]ui.Declared, 0, len(specs))
	for _, s := range specs {
		d := ui.Declared{ID: s.ID, Kind: promptKinds[s.Kind], Choices: s.Choices, HumanOnly: s.HumanOnly}
		if s.ChoicesFrom != "" {
			d.Choices = configIDs(config[s.ChoicesFrom])
		}
		out = append(out, d)
	}
	return out
}

// configIDs is the id field of each item of a configuration list.
func configIDs(v any) []string {
	var ids []string
	add := func(m map[string]any) {
		if id, ok := m["id"].(string); ok {
			ids = append(ids, id)
		}
	}
	switch l := v.(type) {
	case []any:
		for _, x := range l {
			if m, ok := x.(map[string]any); ok {
				add(m)
			}
		}
	case []map[string]any:
		for _, m := range l {
			add(m)
		}
	}
	return ids
}
