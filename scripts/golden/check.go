package golden

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/tokenrun/tokenrun/scripts/check"
)

// Check is the golden runner of `scripts check`: every case of the tree's tests/
// on a temporary software token against a development CA, with the procedures of the
// scripts tree in dir ("" for the shipped one) and a temporary TOKENRUN_HOME. A case only
// SoftHSM2 runs is skipped with a note; a transcript that differs from expected.golden is
// a problem showing the first differing line.
// Progress lines go to log; main runs the CLI in process.
func Check(dir string, log io.Writer, main Main) func(ctx context.Context, tests fs.FS) ([]check.Problem, []string, error) {
	return func(ctx context.Context, tests fs.FS) ([]check.Problem, []string, error) {
		cases, err := LoadCases(tests)
		if err != nil {
			return nil, nil, err
		}
		var problems []check.Problem
		var notes []string
		ran := 0
		for _, gc := range cases {
			file := "tests/" + gc.File(BackendSoft)
			if why := gc.Skip(BackendSoft); why != "" {
				notes = append(notes, fmt.Sprintf("tests/%s: skipped: %s", gc.Path(), why))
				continue
			}
			want, err := gc.Expected(BackendSoft)
			if err != nil {
				problems = append(problems, check.Problem{File: "tests/" + gc.Path(), Msg: err.Error()})
				continue
			}
			fmt.Fprintf(log, "golden %s...\n", gc.Path())
			got, err := runInTemp(ctx, gc, dir, main)
			ran++
			switch {
			case err != nil:
				problems = append(problems, check.Problem{File: file, Msg: "golden case failed: " + err.Error()})
			case got != want:
				problems = append(problems, check.Problem{File: file,
					Msg: "golden mismatch on the software token (- expected, + got) at " + Diff(want, got)})
			}
		}
		notes = append(notes, fmt.Sprintf("ran %d golden case(s) on a software token", ran))
		return problems, notes, nil
	}
}

// runInTemp runs one case in a temporary directory it removes afterwards.
func runInTemp(ctx context.Context, gc Case, dir string, main Main) (string, error) {
	tmp, err := os.MkdirTemp("", "tokenrun-check-")
	if err != nil {
		return "", fmt.Errorf("golden %s: %w", gc.Path(), err)
	}
	defer os.RemoveAll(tmp)
	return Run(ctx, gc, Options{Backend: BackendSoft, Scripts: dir, TempDir: tmp, Main: main})
}
