package ui

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tokenrun/tokenrun/internal/fileperm"
)

// Declared is one prompt a procedure declares it may ask (its metadata's prompts): what an
// answers file is checked against before the run.
type Declared struct {
	ID        string
	Kind      Kind
	Choices   []string // a choice prompt's values; empty when not known before the run
	HumanOnly bool
}

// CheckError is every problem Check found, in file order, reported together.
type CheckError struct {
	Name      string // the answers file
	Procedure string
	Problems  []string // each "file:line: ..."
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("%s does not fit the procedure %s, so nothing was done (the token was not touched):\n  %s",
		e.Name, e.Procedure, strings.Join(e.Problems, "\n  "))
}

// Check compares the answers with the prompts procedure declares, before the run starts:
// ids no prompt has, answers of the wrong shape for their prompt's kind (a list, a mapping,
// a {file:}/{env:} source where no secret is asked, a source that cannot be read), choices
// that are not among the allowed values and confirmations that are not yes or no are all
// returned in one *CheckError. Warnings are for things that do not stop the run: a file
// holding secrets that other users can read (Unix), answers for prompts only a person may
// answer. After Check, Unused no longer reports declared ids a run did not ask.
func (a *Answers) Check(procedure string, decl []Declared) (warnings []string, err error) {
	byID := make(map[string]Declared, len(decl))
	for _, d := range decl {
		byID[d.ID] = d
	}
	a.mu.Lock()
	for id := range byID {
		a.declared[id] = true
	}
	a.mu.Unlock()
	var problems, inlineSecrets []string
	for _, id := range a.order {
		v := a.values[id]
		where := a.name
		if v.line > 0 {
			where = fmt.Sprintf("%s:%d", a.name, v.line)
		}
		bad := func(format string, args ...any) {
			problems = append(problems, where+": "+fmt.Sprintf(format, args...))
		}
		d, ok := byID[id]
		if !ok {
			bad("'%s' is no prompt of %s%s", id, procedure, suggest(id, decl))
			continue
		}
		if d.HumanOnly {
			warnings = append(warnings, fmt.Sprintf("%s: prompt '%s' is answered only by a person at a terminal; the answer is not used", where, id))
			continue
		}
		if _, _, isSource := v.secretSource(); d.Kind == Secret && v.node != nil && !isSource {
			inlineSecrets = append(inlineSecrets, id)
		}
		raw, terr := a.text(v, d.Kind)
		if terr != nil {
			bad("answer for prompt '%s' %s", id, terr.Error())
			continue
		}
		if v.node != nil && v.node.Tag == "!!null" {
			continue // the prompt's default
		}
		switch d.Kind {
		case Choice:
			if len(d.Choices) > 0 && !contains(d.Choices, strings.TrimSpace(raw)) {
				bad("answer for prompt '%s' is %q, which is not one of the allowed values: %s", id, raw, strings.Join(d.Choices, ", "))
			}
		case Confirm:
			if _, ok := parseConfirm(strings.TrimSpace(raw)); !ok && strings.TrimSpace(raw) != "" {
				bad("answer for prompt '%s' is %q: answer yes or no (true or false)", id, raw)
			}
		}
	}
	// Unix only (fileperm): on Windows the mode is made up and the ACL decides.
	if len(inlineSecrets) > 0 && fileperm.OthersMayRead(a.perm) {
		warnings = append(warnings, fmt.Sprintf("%s holds secrets (%s) and can be read by other users (mode %04o): chmod 600 it, or give them as {file: PATH} or {env: NAME}",
			a.name, strings.Join(inlineSecrets, ", "), a.perm))
	}
	if len(problems) > 0 {
		return warnings, &CheckError{Name: a.name, Procedure: procedure, Problems: problems}
	}
	return warnings, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest is " (did you mean 'user_id'?)" for an id close to a declared one, else the list.
func suggest(id string, decl []Declared) string {
	best, dist := "", 3
	ids := make([]string, 0, len(decl))
	for _, d := range decl {
		ids = append(ids, d.ID)
		if n := distance(strings.ToLower(id), strings.ToLower(d.ID)); n < dist {
			best, dist = d.ID, n
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean '%s'?)", best)
	}
	sort.Strings(ids)
	return " (its prompts: " + strings.Join(ids, ", ") + ")"
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
