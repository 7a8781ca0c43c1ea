package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/soft"
	"github.com/tokenrun/tokenrun/transcript"
)

// transcriptsDir is where procedure runs keep their transcripts.
func transcriptsDir() (string, error) {
	home, err := Home()
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

// TranscriptOptions say what a run records and where it writes the transcript.
type TranscriptOptions struct {
	File string // write it to FILE (--transcript); "" for none
	Keep bool   // keep a copy under the data directory's transcripts (the procedures do)
	// Header is the transcript's header as the caller knows it (Command: "enroll", "run");
	// the runtime, OS and the tokens present are filled in.
	Header transcript.Header
}

// newTranscript starts the transcript o asks for, nil when it asks for none.
func newTranscript(o TranscriptOptions) (*transcriptRun, error) {
	tr := &transcriptRun{file: o.File}
	if o.Keep {
		dir, err := transcriptsDir()
		if err != nil {
			return nil, err
		}
		tr.keepDir = dir
	}
	if tr.file == "" && tr.keepDir == "" {
		return nil, nil
	}
	h := o.Header
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
	f := transcript.Footer{Outcome: "ok", Exit: ExitOK, ExitClass: ExitClass(ExitOK)}
	if runErr != nil {
		f.Outcome, f.Message, f.Code = "error", runErr.Error(), ErrorCode(runErr)
		f.Exit = ExitCode(runErr)
		f.ExitClass = ExitClass(f.Exit)
		var ce *CancelledError
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

// TranscriptHeader is the header of a transcript of p, kept by default: it keeps the
// region's --set overrides (sets) and ctx.args, which a replay gives back.
func (p *Procedure) TranscriptHeader(command string, sets []string, args map[string]any) transcript.Header {
	set, cfg := p.Set, p.Config
	h := transcript.Header{Command: command, Procedure: p.Name, ScriptsVersion: set.Manifest.Version, ScriptsSource: set.Source,
		ScriptsDigest: set.Digest,
		Set:           redactedSets(sets), Args: args}
	if caCfg, ok := cfg["ca"].(map[string]any); ok {
		h.CARoots, _ = caCfg["roots"].(string)
	}
	h.Region, _ = cfg["region"].(string)
	h.Language, _ = cfg["language"].(string)
	return h
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
