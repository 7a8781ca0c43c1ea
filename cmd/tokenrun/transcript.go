package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/scripts"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/soft"
	"github.com/tokenrun/tokenrun/transcript"
)

// transcriptFlag is on every command that runs a script.
func transcriptFlag() cli.Flag {
	return &cli.StringFlag{Name: "transcript", EnvVars: []string{"TOKENRUN_TRANSCRIPT"},
		Usage: "write the run's transcript (JSON lines: every call, prompt and answer, secrets redacted) to `FILE`"}
}

// noTranscriptFlag is on the procedures, which keep their latest transcripts by default.
func noTranscriptFlag() cli.Flag {
	return &cli.BoolFlag{Name: "no-transcript", EnvVars: []string{"TOKENRUN_NO_TRANSCRIPT"},
		Usage: "do not keep this run's transcript under the data directory (--transcript FILE still writes one)"}
}

// transcriptsDir is where procedure runs keep their transcripts.
func transcriptsDir() (string, error) {
	home, err := homeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "transcripts"), nil
}

// transcriptRun records one run: the recorder (the observer), the secrets typed during the
// run to search for before writing, and where to write.
type transcriptRun struct {
	rec     *transcript.Recorder
	secrets *transcript.Secrets
	file    string // --transcript FILE; "" for none
	keepDir string // the kept copy's directory; "" for none
}

// newTranscript starts a transcript for command when the flags ask for one (nil when they
// do not). keep says whether the command keeps a copy by default (the procedures do).
func newTranscript(c *cli.Context, command string, keep bool, h transcript.Header) (*transcriptRun, error) {
	tr := &transcriptRun{file: c.String("transcript")}
	if keep && !c.Bool("no-transcript") {
		dir, err := transcriptsDir()
		if err != nil {
			return nil, err
		}
		tr.keepDir = dir
	}
	if tr.file == "" && tr.keepDir == "" {
		return nil, nil
	}
	h.Command = command
	h.RuntimeVersion, h.APILevel = runtime.Version, runtime.APILevel
	h.OS, h.Arch = goruntime.GOOS, goruntime.GOARCH
	tr.rec = transcript.NewRecorder(h)
	// The calls are spilled beside where the transcript goes, and checked for secrets
	// there before it is put in place.
	if tr.file != "" {
		tr.rec.SpillDir(filepath.Dir(tr.file))
	} else {
		if err := os.MkdirAll(tr.keepDir, 0o700); err != nil {
			return nil, fmt.Errorf("transcripts directory: %w", err)
		}
		tr.rec.SpillDir(tr.keepDir)
	}
	tr.secrets = transcript.NewSecrets()
	return tr, nil
}

// addRegionPINs adds a region's default PINs to the secrets searched for: printed in the
// bank's guide, but a transcript showing one means a script passed a PIN where it should not.
func (tr *transcriptRun) addRegionPINs(cfg map[string]any) {
	if tr == nil {
		return
	}
	tok, _ := cfg["token"].(map[string]any)
	for _, k := range []string{"default_user_pin", "default_so_pin"} {
		if v, ok := tok[k].(string); ok {
			tr.secrets.Add(v, "the region's "+k)
		}
	}
}

// begin records the tokens present at the start, with their PIN flags. A failure to list
// them is not the run's failure: the script will meet it and say so.
func (tr *transcriptRun) begin(ctx context.Context, p token.Provider, uri *token.URI, script *runtime.Script) {
	infos, _ := p.Tokens(ctx)
	toks := []transcript.Token{}
	for _, i := range infos {
		if uri == nil || uri.MatchToken(i) {
			t := transcript.TokenOf(i)
			t.Certificates = startCertificates(ctx, p, i)
			toks = append(toks, t)
		}
	}
	module := p.Description()
	if _, ok := p.(*soft.Provider); ok {
		module = "software token"
	}
	tr.rec.SetHeader(func(h *transcript.Header) {
		h.Module, h.Tokens = module, toks
		if h.Procedure == "" && script != nil {
			h.Procedure = script.Name()
		}
	})
}

// startCertificates are the certificate objects on a token before the run: public, read
// without a login. A token that cannot be read gives none; the script will meet the
// problem itself.
func startCertificates(ctx context.Context, p token.Provider, i token.Info) []transcript.Object {
	if !i.Initialized {
		return nil
	}
	tok, err := p.Open(ctx, i)
	if err != nil {
		return nil
	}
	defer tok.Close()
	certs, err := tok.Certificates(ctx)
	if err != nil {
		return nil
	}
	out := make([]transcript.Object, len(certs))
	for k, c := range certs {
		out[k] = transcript.Object{ID: c.IDHex(), Label: c.Label, DER: c.DER}
	}
	return out
}

// finish writes the transcript of a run that ended with res, runErr, and returns runErr
// joined with any failure to write. The secret search runs first: on a match nothing is
// written, neither FILE nor the kept copy.
func (tr *transcriptRun) finish(res *runtime.Result, runErr error) error {
	tr.rec.SetHeader(func(h *transcript.Header) {
		var se *runtime.ScriptError
		switch {
		case res != nil && res.Procedure != nil:
			h.Procedure, h.Version = res.Procedure.Name, res.Procedure.Version
		case errors.As(runErr, &se) && se.Procedure != "":
			h.Procedure, h.Version = se.Procedure, se.Version
		}
	})
	f := transcript.Footer{Outcome: "ok", Exit: exitOK, ExitClass: exitClass(exitOK)}
	if runErr != nil {
		f.Outcome, f.Message, f.Code = "error", runErr.Error(), errorCode(runErr)
		f.Exit = exitCode(runErr)
		f.ExitClass = exitClass(f.Exit)
		var ce *cancelledError
		if errors.As(runErr, &ce) {
			f.Outcome, f.Message = "cancelled", ce.detail()
		}
	}
	pending, err := tr.rec.Close(f)
	if err == nil {
		err = pending.Check(tr.secrets) // removes the file on a match
		if err == nil {
			defer pending.Remove()
		}
	}
	if err == nil && tr.file != "" {
		err = pending.WriteFile(tr.file)
	}
	if err == nil && tr.keepDir != "" {
		h := tr.rec.Header()
		_, err = pending.Keep(tr.keepDir, h.Procedure, h.Start, transcript.DefaultLimits)
	}
	if err == nil {
		return runErr
	}
	if runErr == nil {
		return err
	}
	// The run's own failure comes first: it decides the exit code.
	return fmt.Errorf("%w (and %w)", runErr, err)
}

// errorCode is the script-visible code of a run's error, when it has one.
func errorCode(err error) string {
	var c coded
	if errors.As(err, &c) && c.ErrorCode() != "" {
		return c.ErrorCode()
	}
	if code := errcode.Of(err); code != errcode.TokenError {
		return code
	}
	return ""
}

// exitClass names an exit code as the README's table does.
func exitClass(code int) string {
	names := map[int]string{exitOK: "ok", exitInternal: "internal", exitUsage: "usage", exitScript: "script",
		exitToken: "token", exitCA: "ca", exitCancelled: "cancelled", exitRefused: "refused", exitVerify: "verify", exitDiverged: "diverged"}
	if n, ok := names[code]; ok {
		return n
	}
	return strings.ToLower(fmt.Sprintf("exit %d", code))
}

// procedureTranscript starts the transcript of a procedure command, kept by default.
// The header keeps the region's --set overrides and ctx.args, which a replay gives back.
func procedureTranscript(c *cli.Context, p procedure, set *scripts.Set, cfg, args map[string]any) (*transcriptRun, error) {
	h := transcript.Header{Procedure: p.name, ScriptsVersion: set.Manifest.Version, ScriptsSource: set.Source,
		ScriptsDigest: set.Digest,
		Set:           redactedSets(c.StringSlice("set")), Args: args}
	if caCfg, ok := cfg["ca"].(map[string]any); ok {
		h.CARoots, _ = caCfg["roots"].(string)
	}
	h.Region, _ = cfg["region"].(string)
	h.Language, _ = cfg["language"].(string)
	tr, err := newTranscript(c, p.command, true, h)
	if err != nil || tr == nil {
		return tr, err
	}
	tr.addRegionPINs(cfg)
	return tr, nil
}

// redactedSets are --set overrides as a transcript keeps them: a default PIN's value is
// "<secret>", which the secret search would refuse, and which a replay leaves out. A
// ca.roots path is made absolute, so a reader knows which file it was from any folder (its
// content is in the header's ca_roots; a replay never opens the path).
func redactedSets(sets []string) []string {
	var out []string
	for _, kv := range sets {
		k, v, _ := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if k == "token.default_user_pin" || k == "token.default_so_pin" {
			kv = k + "=" + runtime.Redacted
		}
		if k == "ca.roots" && v != "" && !filepath.IsAbs(v) {
			if abs, err := filepath.Abs(v); err == nil {
				kv = k + "=" + abs
			}
		}
		out = append(out, kv)
	}
	return out
}
