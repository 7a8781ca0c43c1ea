package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/journal"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11"
	"github.com/tokenrun/tokenrun/token/soft"
	"github.com/tokenrun/tokenrun/transcript"
)

// knownModules are where Debian and Ubuntu install the PKCS#11 modules support asks about.
var knownModules = []struct{ name, path string }{
	{"SoftHSM2", "/usr/lib/softhsm/libsofthsm2.so"},
	{"SoftHSM2", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"},
	{"openCryptoki", "/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so"},
	{"openCryptoki", "/usr/lib/opencryptoki/libopencryptoki.so"},
	{"OpenSC", "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"},
	{"OpenSC", "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so"},
}

// Diagnosis is what `tokenrun diagnose` reports. It holds no secret by construction: token
// flags, versions, journal fields (which never hold secrets: journal refuses them) and
// transcript summaries; no PIN file is ever read.
type Diagnosis struct {
	Time           time.Time            `json:"time"`
	RuntimeVersion string               `json:"runtime_version"`
	APILevel       int                  `json:"api_level"`
	OS             string               `json:"os"`
	Arch           string               `json:"arch"`
	Home           string               `json:"home"`
	Modules        []ModuleDiagnosis    `json:"modules"`
	Scripts        []ScriptsDiagnosis   `json:"scripts"`
	Journals       []*journal.Entry     `json:"journals"`
	Transcripts    []transcript.Summary `json:"transcripts"`
	Problems       []string             `json:"problems,omitempty"`
}

// ModuleDiagnosis is one token source: a PKCS#11 module or software token directories.
type ModuleDiagnosis struct {
	Name   string       `json:"name"`
	Path   string       `json:"path"`
	Found  bool         `json:"found"`
	Error  string       `json:"error,omitempty"`
	Tokens []token.Info `json:"tokens"`
}

// ScriptsDiagnosis is one scripts tree the host could run.
type ScriptsDiagnosis struct {
	Source  string `json:"source"`
	Version string `json:"version"`
}

func diagnoseCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "diagnose",
		Usage: "report modules, tokens, scripts, pending enrollments and recent transcripts, for support",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "write the report to `FILE` instead of standard output"},
			&cli.BoolFlag{Name: "text", Usage: "readable text instead of JSON"},
			&cli.StringSliceFlag{Name: "module", Aliases: []string{"m"}, EnvVars: []string{"TOKENRUN_MODULE"},
				Usage: "also look at this PKCS#11 library (repeatable)"},
			&cli.StringSliceFlag{Name: "soft", EnvVars: []string{"TOKENRUN_SOFT"},
				Usage: "also look at the software token in `DIR` (repeatable; never created)"},
			&cli.BoolFlag{Name: "probe", Value: true, Usage: "probe the usual SoftHSM2, openCryptoki and OpenSC paths"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("diagnose takes no arguments (got %q)", c.Args().First())}
			}
			d := diagnose(c)
			var buf strings.Builder
			if c.Bool("text") {
				writeDiagnosisText(&buf, d)
			} else {
				b, err := json.MarshalIndent(d, "", "  ")
				if err != nil {
					return fmt.Errorf("diagnosis: %w", err)
				}
				buf.Write(append(b, '\n'))
			}
			if out := c.String("out"); out != "" {
				if err := atomicfile.WriteFile(out, []byte(buf.String()), 0o600); err != nil {
					return fmt.Errorf("diagnose --out: %w", err)
				}
				fmt.Fprintf(io.err, "diagnosis written to %s\n", out)
				return nil
			}
			_, err := io.out.Write([]byte(buf.String()))
			return err
		},
	}
}

// diagnose gathers the report. Each part that fails is noted in Problems or beside what it
// concerns: a diagnosis is most wanted when things are broken.
func diagnose(c *cli.Context) *Diagnosis {
	d := &Diagnosis{Time: time.Now().UTC(), RuntimeVersion: runtime.Version, APILevel: runtime.APILevel,
		OS: goruntime.GOOS, Arch: goruntime.GOARCH,
		Modules: []ModuleDiagnosis{}, Scripts: []ScriptsDiagnosis{}, Journals: []*journal.Entry{}, Transcripts: []transcript.Summary{}}
	problem := func(format string, args ...any) { d.Problems = append(d.Problems, fmt.Sprintf(format, args...)) }

	var seen []string
	probe := func(name, path string) {
		// Debian links one library under two paths: load each file once.
		real := path
		if r, err := filepath.EvalSymlinks(path); err == nil {
			real = r
		}
		if slices.Contains(seen, real) {
			return
		}
		seen = append(seen, real)
		d.Modules = append(d.Modules, probeModule(c, name, path))
	}
	if c.Bool("probe") {
		for _, m := range knownModules {
			if _, err := os.Stat(m.path); err == nil {
				probe(m.name, m.path)
			}
		}
	}
	for _, m := range c.StringSlice("module") {
		probe("--module", m)
	}
	if dirs := c.StringSlice("soft"); len(dirs) > 0 {
		d.Modules = append(d.Modules, probeSoft(c, dirs))
	}

	if set, err := scripts.Embedded(); err != nil {
		problem("embedded scripts: %v", err)
	} else {
		d.Scripts = append(d.Scripts, scriptsDiagnosis(set))
	}
	// TODO(bundle): list the installed script bundles (source, version, active) once the
	// bundle package's listing is settled; diagnose must not fail when none is installed.

	home, err := homeDir()
	if err != nil {
		problem("data directory: %v", err)
		return d
	}
	d.Home = home
	// journal.Open creates its directory: only look when there is one.
	if dir := filepath.Join(home, "journal"); exists(dir) {
		if st, err := journal.Open(dir); err != nil {
			problem("journals: %v", err)
		} else if open, err := st.Open(); err != nil {
			problem("journals: %v", err)
		} else {
			d.Journals = append(d.Journals, open...)
		}
	}
	if sums, err := transcript.List(filepath.Join(home, "transcripts")); err != nil {
		problem("transcripts: %v", err)
	} else {
		d.Transcripts = sums
	}
	return d
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func probeModule(c *cli.Context, name, path string) ModuleDiagnosis {
	m := ModuleDiagnosis{Name: name, Path: path, Tokens: []token.Info{}}
	if _, err := os.Stat(path); err != nil {
		m.Error = err.Error()
		return m
	}
	m.Found = true
	p, err := pkcs11.Open(path)
	if err != nil {
		m.Error = err.Error()
		return m
	}
	defer p.Close()
	infos, err := p.Tokens(c.Context)
	if err != nil {
		m.Error = err.Error()
	}
	m.Tokens = append(m.Tokens, infos...)
	return m
}

// probeSoft looks at software token directories without creating any: an empty or missing
// directory is reported, not given a blank token.
func probeSoft(c *cli.Context, dirs []string) ModuleDiagnosis {
	m := ModuleDiagnosis{Name: "software token", Path: strings.Join(dirs, ", "), Tokens: []token.Info{}}
	var present, missing []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			missing = append(missing, dir)
			continue
		}
		present = append(present, dir)
	}
	if len(missing) > 0 {
		m.Error = "no software token in " + strings.Join(missing, ", ")
	}
	if len(present) == 0 {
		return m
	}
	m.Found = true
	p, err := soft.Open(soft.Options{}, present...)
	if err != nil {
		m.Error = strings.TrimPrefix(m.Error+"; "+err.Error(), "; ")
		return m
	}
	defer p.Close()
	infos, err := p.Tokens(c.Context)
	if err != nil {
		m.Error = strings.TrimPrefix(m.Error+"; "+err.Error(), "; ")
	}
	m.Tokens = append(m.Tokens, infos...)
	return m
}

func scriptsDiagnosis(set *scripts.Set) ScriptsDiagnosis {
	return ScriptsDiagnosis{Source: set.Source, Version: set.Manifest.Version}
}

// writeDiagnosisText is the report for a person to read over the phone.
func writeDiagnosisText(w io.Writer, d *Diagnosis) {
	fmt.Fprintf(w, "tokenrun %s (script API %d) on %s/%s, %s\n", d.RuntimeVersion, d.APILevel, d.OS, d.Arch, d.Time.Format(time.RFC3339))
	fmt.Fprintf(w, "data directory: %s\n\nmodules:\n", d.Home)
	if len(d.Modules) == 0 {
		fmt.Fprintln(w, "  none found")
	}
	for _, m := range d.Modules {
		fmt.Fprintf(w, "  %s %s", m.Name, m.Path)
		if m.Error != "" {
			fmt.Fprintf(w, " (%s)", m.Error)
		}
		fmt.Fprintln(w)
		for _, t := range m.Tokens {
			label := t.Label
			if !t.Initialized {
				label = "(uninitialised)"
			}
			fmt.Fprintf(w, "    %s serial %s, %s %s: user PIN %s, SO PIN %s\n", label, t.Serial, t.Manufacturer, t.Model, pinState(t.UserPIN), pinState(t.SOPIN))
		}
	}
	fmt.Fprintln(w, "\nscripts:")
	for _, s := range d.Scripts {
		fmt.Fprintf(w, "  %s %s\n", s.Source, s.Version)
	}
	fmt.Fprintln(w, "\npending enrollments:")
	if len(d.Journals) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, j := range d.Journals {
		data, _ := json.Marshal(j.Data)
		fmt.Fprintf(w, "  token %s: %s at step %s, started %s, updated %s, data %s\n", j.Serial, j.Procedure, j.Step,
			j.Started.Format(time.RFC3339), j.Updated.Format(time.RFC3339), data)
	}
	fmt.Fprintln(w, "\nrecent transcripts:")
	if len(d.Transcripts) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, t := range d.Transcripts {
		outcome := t.Outcome
		if t.Code != "" {
			outcome += " " + t.Code
		}
		if t.Problem != "" {
			outcome = t.Problem
		}
		fmt.Fprintf(w, "  %s  %d bytes  %s %s: %s\n", t.Name, t.Size, t.Procedure, t.Version, outcome)
	}
	for _, p := range d.Problems {
		fmt.Fprintf(w, "\nproblem: %s\n", p)
	}
}
