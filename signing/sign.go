// Package signing is the batch of `tokenrun sign`: every document signed in one run with one
// login, under the host's safety floor (runner.Guard), with the PIN-file and final-try rules
// and atomic outputs. It runs no Lua.
package signing

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	"github.com/tokenrun/tokenrun/cms"
	"github.com/tokenrun/tokenrun/internal/atomicfile"
	"github.com/tokenrun/tokenrun/internal/fileperm"
	"github.com/tokenrun/tokenrun/internal/readfile"
	"github.com/tokenrun/tokenrun/internal/textenc"
	"github.com/tokenrun/tokenrun/region"
	"github.com/tokenrun/tokenrun/runner"
	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/ui"
)

// PINPromptID is the prompt id for the user PIN, the same as the shipped procedures use, so
// one answers vocabulary covers every command.
const PINPromptID = "current_pin"

// Job is one document and where its signature goes.
type Job struct{ In, Out string }

// PlanOutputs names every output and checks the inputs and outputs before the token is
// touched, so that a typo is found before a PIN try is spent, and a batch never stops
// half-way on something that could have been known at the start.
func PlanOutputs(inputs []string, out, outDir string, force bool) ([]Job, error) {
	switch {
	case len(inputs) == 0:
		return nil, errors.New("sign needs documents: --in FILE (repeat it, or list more files after the flags)")
	case out != "" && outDir != "":
		return nil, errors.New("give either --out or --out-dir, not both")
	case out != "" && len(inputs) > 1:
		return nil, fmt.Errorf("--out names one signature file, but %d documents are given: use --out-dir DIR, or leave it out to write FILE.p7s next to each", len(inputs))
	}
	if outDir != "" {
		st, err := os.Stat(outDir)
		if err != nil {
			return nil, fmt.Errorf("--out-dir: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("--out-dir %s is not a directory", outDir)
		}
	}
	jobs := make([]Job, 0, len(inputs))
	ins := map[string]string{}  // absolute input path -> as given
	outs := map[string]string{} // absolute output path -> the input it is for
	for _, in := range inputs {
		st, err := os.Stat(in)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("document %s does not exist", in)
		case err != nil:
			return nil, fmt.Errorf("document: %w", err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("document %s is not a regular file", in)
		}
		absIn, err := filepath.Abs(in)
		if err != nil {
			return nil, err
		}
		if prev, dup := ins[absIn]; dup {
			return nil, fmt.Errorf("document %s is given twice (also as %s)", in, prev)
		}
		ins[absIn] = in
		o := out
		switch {
		case o != "":
		case outDir != "":
			o = filepath.Join(outDir, filepath.Base(in)+".p7s")
		default:
			o = in + ".p7s"
		}
		absOut, err := filepath.Abs(o)
		if err != nil {
			return nil, err
		}
		if prev, dup := outs[absOut]; dup {
			return nil, fmt.Errorf("documents %s and %s would both be signed into %s: rename one, or sign them in separate runs", prev, in, o)
		}
		outs[absOut] = in
		jobs = append(jobs, Job{In: in, Out: o})
	}
	for _, j := range jobs {
		absOut, _ := filepath.Abs(j.Out)
		if in, isInput := ins[absOut]; isInput {
			return nil, fmt.Errorf("the signature of %s would overwrite the document %s", outs[absOut], in)
		}
		if force {
			continue
		}
		if _, err := os.Lstat(j.Out); err == nil {
			return nil, fmt.Errorf("%s exists: give --force to overwrite it, or move it away", j.Out)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("output %w", err)
		}
	}
	return jobs, nil
}

// CheckKeyURI requires the URI to name a key: signing payment orders with whichever key
// happens to be first is not a default anyone wants.
func CheckKeyURI(uri *token.URI) error {
	if uri.Object == "" && len(uri.ID) == 0 {
		return errors.New("--token must name the key: pkcs11:token=LABEL;object=KEY_LABEL (or id=%01%02..., its CKA_ID)")
	}
	if uri.Type != "" && uri.Type != "private" {
		return fmt.Errorf("--token: type=%s: the signing key is a private key; leave type out or write type=private", uri.Type)
	}
	return nil
}

// schemeRe matches a URI scheme; one letter is a Windows drive, not a scheme.
var schemeRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]+:`)

// PINFilePath is the file the PIN comes from: --pin-file, or the URI's pin-source (RFC 7512:
// file:PATH, file:///PATH, or a plain path, as p11-kit and OpenSC read it). "" means the
// terminal. The PIN itself is never taken from a flag or the environment: it would show in
// process lists and shell history.
func PINFilePath(flag, source string) (string, error) {
	switch {
	case flag != "" && source != "":
		return "", errors.New("the PIN comes from --pin-file or from the URI's pin-source, not both")
	case flag != "":
		return flag, nil
	case source == "":
		return "", nil
	case strings.HasPrefix(source, "file://"):
		u, err := url.Parse(source)
		if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
			return "", fmt.Errorf("pin-source %q: want file:PATH or file:///PATH on this machine", source)
		}
		return u.Path, nil
	case strings.HasPrefix(source, "file:"):
		return strings.TrimPrefix(source, "file:"), nil
	case strings.HasPrefix(source, "|") || schemeRe.MatchString(source):
		return "", fmt.Errorf("pin-source %q: only files are read (pin-source=file:PATH)", source)
	}
	return source, nil
}

// maxPINFile bounds what is read as a PIN: a larger file is the wrong file, and reading a
// document as a PIN would spend a try on it.
const maxPINFile = 1024

// ReadPINFile reads a PIN file, dropping one trailing newline (what `echo PIN > file`
// writes). A pipe works too (--pin-file <(pass show token)). Errors never quote the content.
func ReadPINFile(path string, warn func(string)) (string, error) {
	f, err := readfile.Open(path, readfile.PIN) // a regular file or a pipe; never a device
	var re *readfile.Error
	if errors.As(err, &re) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("PIN file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("PIN file: %w", err)
	}
	if st.IsDir() {
		return "", fmt.Errorf("PIN file %s is a directory", path)
	}
	// Unix only (fileperm): on Windows the mode is made up and the ACL decides.
	if st.Mode().IsRegular() && fileperm.OthersMayRead(st.Mode()) {
		warn(fmt.Sprintf("PIN file %s can be read by other users (mode %04o): chmod 600 it", path, st.Mode().Perm()))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPINFile+1))
	if err != nil {
		return "", fmt.Errorf("PIN file: %w", err)
	}
	if len(b) > maxPINFile {
		return "", fmt.Errorf("PIN file %s holds more than %d bytes, which is no PIN: check the path", path, maxPINFile)
	}
	// Notepad's "Unicode" and PowerShell 5's > write UTF-16 with a BOM: sent as bytes, the
	// PIN would be wrong and cost a try.
	if b, err = textenc.Decode(b); err != nil {
		return "", fmt.Errorf("PIN file %s is %w", path, err)
	}
	s := string(b)
	if strings.HasSuffix(s, "\n") {
		s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	}
	switch {
	case s == "":
		return "", fmt.Errorf("PIN file %s is empty", path)
	case strings.Contains(s, "\n"):
		return "", fmt.Errorf("PIN file %s holds more than one line: put only the PIN in it", path)
	}
	return s, nil
}

// Batch is one run of `tokenrun sign`.
type Batch struct {
	Provider token.Provider
	URI      *token.URI // the token and the key (object=, id=)
	PINFile  string     // "" asks Frontend
	Frontend ui.Frontend
	Jobs     []Job
	Detached bool
	Force    bool
	Out      io.Writer     // "DOC -> SIG" per signature (stdout)
	Err      io.Writer     // warnings and the summary (stderr)
	LockWait time.Duration // --lock-wait
	// Messages is the --lang catalog the person reads sign's words in; nil: English.
	Messages map[string]string
	// Person words an error for the person by a catalog key (the CLI's last line); nil:
	// the error as it is.
	Person func(err error, key string, args map[string]any) error
	// Signed, when set, reports document j, the n-th signed, once it is durable (the JSON
	// protocol's "signed" line); nil, or an error from it, prints the usual "DOC -> SIG".
	Signed func(ctx context.Context, j Job, n int) error
	// Done, when set, is told the key, token and certificate the whole batch signed with.
	Done func(key *token.Key, info token.Info, cert *x509.Certificate)
}

// say is the catalog's text key, else english (a batch without a catalog).
func (s Batch) say(english, key string, args map[string]any) string {
	if _, ok := s.Messages[key]; !ok {
		return english
	}
	return region.Text(s.Messages, key, args)
}

// person is err worded for the person by the catalog's key, when there is one.
func (s Batch) person(err error, key string, args map[string]any) error {
	if _, ok := s.Messages[key]; !ok || s.Person == nil {
		return err
	}
	return s.Person(err, key, args)
}

// personName names a token in a sentence for people, as the procedures do: label (serial).
func personName(info token.Info) string {
	if info.Label == "" {
		return info.Serial
	}
	return info.Label + " (" + info.Serial + ")"
}

// Sign signs every job with one login. Documents are read, signed and written one at a
// time, so memory stays flat however many there are; a failure stops the batch, and the
// signatures already written are complete and good.
func Sign(ctx context.Context, s Batch) (err error) {
	signed := 0
	defer func() {
		err = runner.Cancelled(ctx, err, s.say(signCancelledNotice(signed, len(s.Jobs)), "sign_cancelled",
			map[string]any{"signed": signed, "count": len(s.Jobs)}))
	}()
	// The whole batch runs under the safety floor: one token lock from before the PIN check
	// to the last signature, and the tries ledger deciding the login.
	witness := ui.NewWitness(s.Frontend)
	guarded, err := runner.Guard(s.Provider, runner.GuardOptions{Command: "tokenrun sign", LockWait: s.LockWait, Witness: witness, Messages: s.Messages})
	if err != nil {
		return err
	}
	s.Provider, s.Frontend = guarded, witness
	sel, err := token.Select(ctx, s.Provider, token.SelectOptions{URI: s.URI})
	if err != nil {
		return err
	}
	info, err := sel.One()
	if err != nil {
		return err
	}
	tok, err := s.Provider.Open(ctx, info)
	if err != nil {
		return err
	}
	defer tok.Close()

	if err := login(ctx, tok, s); err != nil {
		return err
	}
	defer func() { _ = tok.Logout(context.WithoutCancel(ctx)) }()

	key, err := findKey(ctx, tok, info, s.URI)
	if err != nil {
		return err
	}
	cert, err := token.CertificateFor(ctx, tok, key)
	if err != nil {
		return err
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		fmt.Fprintln(s.Err, s.say(fmt.Sprintf("warning: the certificate of key %s is not valid now (valid %s to %s): verifiers will reject these signatures",
			key.Name(), cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339)),
			"sign_certificate_not_valid", map[string]any{"key": key.Name(), "from": cert.NotBefore, "until": cert.NotAfter}))
	}
	ks, err := tok.Signer(ctx, key)
	if err != nil {
		return err
	}
	signer, err := cms.NewSigner(ks, cert, cms.SignOptions{Detached: s.Detached})
	if err != nil {
		// KEY_MISMATCH or UNSUPPORTED: what is on the token, so a token exit code.
		return runner.CodedError{Code: bindsign.Code(err), Err: err}
	}
	// Durability without two syncs per signature: signatures are made durable in groups
	// (atomicfile.Group, beside the signing): the data of every signature of a group (one
	// syncfs on Linux), then their names, then one sync of their directory, and only then
	// are the group's "-> OUT" lines printed. So every signature reported survives a crash,
	// name and content, as when each file and its directory were synced on their own; a crash
	// can lose only signatures not yet reported, and never leaves a part under a name.
	group := NewGroup()
	defer group.Close()
	for _, j := range s.Jobs {
		err := SignDocument(ctx, signer, j, s.Force, group, func() {
			signed++
			if s.Signed == nil || s.Signed(ctx, j, signed) != nil {
				fmt.Fprintf(s.Out, "%s -> %s\n", j.In, j.Out)
			}
		})
		if err != nil {
			// Make durable and list those done before it; an error there is the earlier one.
			if ferr := group.Close(); ferr != nil && !errors.Is(err, ferr) {
				err = signWriteError(ferr)
			}
			if signed > 0 {
				err = fmt.Errorf("%w (the %d document(s) listed before it are signed)", err, signed)
			}
			return err
		}
	}
	if err := group.Close(); err != nil {
		err = signWriteError(err)
		if signed > 0 {
			err = fmt.Errorf("%w (the %d document(s) listed before it are signed)", err, signed)
		}
		return err
	}
	if s.Done != nil {
		s.Done(key, info, cert)
	}
	fmt.Fprintln(s.Err, s.say(fmt.Sprintf("signed %d document(s) with key %s on %s; certificate %s",
		len(s.Jobs), key.Name(), info.Name(), certSummary(cert)),
		"sign_done", map[string]any{"count": len(s.Jobs), "key": key.Name(), "token": personName(info), "subject": cert.Subject.String(), "serial": bindsign.Serial(cert)}))
	return nil
}

// signCancelledNotice is the one line a stopped batch ends with. sign has no message
// catalog: its words are English, like the rest of its messages.
func signCancelledNotice(signed, total int) string {
	if signed == 0 {
		return fmt.Sprintf("cancelled: no document was signed, and the token was not changed (logged out). Run the same command again to sign the %d document(s).", total)
	}
	return fmt.Sprintf("cancelled: %d of %d document(s) signed; each signature written is complete, and no partial file is left; the token was not changed (logged out). "+
		"Run the command again with the documents not yet signed, or with --force to sign them all again.", signed, total)
}

// groupFiles and groupDelay bound how long a signature waits for the syncs that let it be
// reported: a flush per 256 files is four per thousand small documents, and a person
// watching sees lines within a fifth of a second. A signature waiting holds no descriptor.
const (
	groupFiles = 256
	groupDelay = 200 * time.Millisecond
)

// NewGroup is the group Sign makes its signatures durable in.
func NewGroup() *atomicfile.Group { return atomicfile.NewGroup(groupFiles, groupDelay) }

// SignDocument streams a document through the signer into its signature file (the document
// is hashed as it is read, never held whole) and commits the file to group, which runs
// report once the signature is durable.
func SignDocument(ctx context.Context, signer *cms.Signer, j Job, force bool, group *atomicfile.Group, report func()) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopped before %s: %w", j.In, err)
	}
	doc, err := readfile.Open(j.In, readfile.Document)
	if err != nil {
		return fmt.Errorf("read document: %w", err)
	}
	defer doc.Close()
	// A signature is public: 0644. Without force an existing file is never replaced, even
	// one that appeared after PlanOutputs looked.
	w, err := atomicfile.Create(j.Out, 0o644, force)
	if err != nil {
		return fmt.Errorf("write the signature of %s: %w", j.In, err)
	}
	if err := signer.SignStream(w, ctxReader{ctx, doc}, doc.Size()); err != nil {
		w.Abort()
		return fmt.Errorf("sign %s: %w", j.In, err)
	}
	if err := group.Commit(w, report); err != nil {
		return signWriteError(err)
	}
	return nil
}

// signWriteError words a failure to make a signature durable; it names the signature file,
// which may be an earlier document's, waiting for the same directory sync.
func signWriteError(err error) error {
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: give --force to overwrite it", err)
	}
	return fmt.Errorf("write a signature: %w", err)
}

// ctxReader stops a long read (a gigabyte document) once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// login reads the PIN flags first and logs in as the user, so that no try is spent on a
// locked PIN, and the last try is spent only by a person typing at a terminal.
func login(ctx context.Context, tok token.Token, s Batch) error {
	info, err := tok.Info(ctx)
	if err != nil {
		return err
	}
	name := info.Name()
	switch {
	case !info.UserPINInitialized:
		return s.person(runner.CodedError{Code: errcode.PINNotInitialized, Err: fmt.Errorf("%s has no user PIN set: the administrator must set one", name), Cond: token.ErrPINNotInitialized}, "pin_not_initialized", nil)
	case info.UserPIN.Locked:
		return s.person(runner.CodedError{Code: errcode.PINLocked, Err: fmt.Errorf("the user PIN of %s is locked, so no login was tried: the administrator must unblock it with the SO PIN", name), Cond: token.ErrPINLocked},
			"sign_pin_locked", map[string]any{"token": personName(info)})
	}
	finalTry := info.UserPIN.FinalTry
	if finalTry && (s.PINFile != "" || !s.Frontend.Interactive()) {
		return s.person(runner.CodedError{Code: errcode.Refused, Err: fmt.Errorf("one PIN try is left on %s: tokenrun sign will not spend it from a file or a pipe; type the PIN at a terminal, or have the administrator unblock the token", name)},
			"sign_final_try_refused", map[string]any{"token": personName(info)})
	}

	var pin string
	if s.PINFile != "" {
		pin, err = ReadPINFile(s.PINFile, func(msg string) { fmt.Fprintf(s.Err, "warning: %s\n", msg) })
		if err != nil {
			return runner.UsageError{Err: err}
		}
	} else {
		p := ui.Prompt{ID: PINPromptID, Kind: ui.Secret, Label: s.say("Password of "+name, "sign_pin_prompt", map[string]any{"token": personName(info)}), HumanOnly: finalTry}
		if finalTry {
			p.Help = s.say("Only ONE try is left: a wrong password locks the token.", "sign_final_try", nil)
		}
		pin, err = s.Frontend.Ask(ctx, p)
		if err != nil {
			return err
		}
	}
	if err := tok.Login(ctx, token.User, pin); err != nil {
		var te *token.Error
		if errors.As(err, &te) && errors.Is(err, token.ErrPINIncorrect) {
			const last = "one try is left, which tokenrun sign takes only from a person typing at a terminal"
			switch left := te.RetriesLeft; {
			case left == 1:
				return s.person(fmt.Errorf("%w: %s", err, last), "sign_pin_incorrect_last", nil)
			case left >= 0:
				return s.person(fmt.Errorf("%w: %d tries left", err, left), "sign_pin_incorrect", map[string]any{"retries_left": left})
			}
			// PKCS#11 modules give only flags: read them again.
			if now, ierr := tok.Info(ctx); ierr == nil && now.UserPIN.FinalTry {
				return s.person(fmt.Errorf("%w: %s", err, last), "sign_pin_incorrect_last", nil)
			}
		}
		return err
	}
	return nil
}

// findKey finds the private key the URI names by label and/or id. It needs the login:
// private keys are private objects.
func findKey(ctx context.Context, tok token.Token, info token.Info, uri *token.URI) (*token.Key, error) {
	key, err := token.FindKey(ctx, tok, uri)
	switch {
	case errors.Is(err, token.ErrSeveralKeys):
		return nil, runner.UsageError{Err: fmt.Errorf("on %s: %w: add id= to --token to pick one", info.Name(), err)}
	case errors.Is(err, token.ErrNotFound):
		return nil, runner.CodedError{Code: errcode.NotFound, Err: fmt.Errorf("no such key on %s: %w: check object= and id= in --token", info.Name(), err), Cond: token.ErrNotFound}
	}
	return key, err
}

// certSummary names a certificate for people.
func certSummary(c *x509.Certificate) string {
	return fmt.Sprintf("%q, serial %s", c.Subject.String(), bindsign.Serial(c))
}
