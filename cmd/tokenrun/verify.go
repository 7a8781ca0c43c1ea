package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
	"github.com/tokenrun/tokenrun/cms"
	"github.com/tokenrun/tokenrun/internal/readfile"
)

func verifyCommand(io stdio) *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check a CMS signature: signature, content, chain to the given roots, certificate validity at signing time",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "in", TakesFile: true, Usage: "the signature `FILE` (DER or PEM)"},
			&cli.StringFlag{Name: "content", TakesFile: true, Usage: "the signed document `FILE`, for a detached signature"},
			&cli.StringFlag{Name: "roots", TakesFile: true, Usage: "the certificates to trust, PEM `FILE` (the bank's root CA)"},
			&cli.BoolFlag{Name: "json", Usage: "print the verdict as JSON (the fields sign.verify gives scripts)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("verify takes no arguments (got %q): give the signature with --in", c.Args().First())}
			}
			in, contentPath, rootsPath := c.String("in"), c.String("content"), c.String("roots")
			switch {
			case in == "":
				return usageError{errors.New("verify needs the signature: --in FILE")}
			case rootsPath == "":
				// Without roots the chain check can only fail; asking for them is clearer
				// than a verdict that always says no.
				return usageError{errors.New("verify needs the certificates to trust: --roots PEM (the bank's root CA certificate)")}
			}
			// Roots first: they are small, and a mistake there is found before a large
			// signature or document is read.
			rootsPEM, err := readfile.Read(rootsPath, readfile.Roots)
			if err != nil {
				return usageError{fmt.Errorf("roots: %w", err)}
			}
			roots, err := bindsign.ParseRoots(rootsPEM)
			if err != nil {
				return usageError{fmt.Errorf("roots %s: %w", rootsPath, err)}
			}
			sigFile, err := readfile.Open(in, readfile.Signature)
			if err != nil {
				return usageError{fmt.Errorf("signature: %w", err)}
			}
			defer sigFile.Close()
			var content *readfile.File
			if contentPath != "" {
				doc, err := readfile.Open(contentPath, readfile.Document)
				if err != nil {
					return usageError{fmt.Errorf("content: %w", err)}
				}
				defer doc.Close()
				content = doc
			}
			v, err := verifyStream(sigFile, content, cms.VerifyOptions{Roots: roots})
			var re *readfile.Error
			if errors.As(err, &re) {
				return usageError{err}
			}
			if err != nil {
				err = fmt.Errorf("%s cannot be checked: %w", in, err)
				if c.Bool("json") {
					if jerr := printJSON(io, map[string]any{"ok": false, "problems": []string{err.Error()}}); jerr != nil {
						return jerr
					}
				}
				return verifyError{err}
			}
			if c.Bool("json") {
				if err := printJSON(io, bindsign.VerdictMap(v)); err != nil {
					return err
				}
			} else {
				printVerdict(io, v, contentPath)
			}
			if !v.OK() {
				return verifyError{fmt.Errorf("%s: signature NOT verified (%s)", in, failedChecks(v))}
			}
			return nil
		},
	}
}

// maxTextSignature bounds a PEM or base64 signature, which is decoded in memory: such text is
// how small signatures travel (in mail, in forms); a large one comes as DER, which is
// streamed.
const maxTextSignature = 256 << 20

// verifyStream checks a signature read from sig and a document read from content (nil
// without --content), neither held whole when the signature is DER or BER; a PEM signature
// is decoded in memory first.
func verifyStream(sig, content *readfile.File, opts cms.VerifyOptions) (*cms.Verdict, error) {
	var doc io.Reader
	if content != nil {
		doc = content
	}
	br := bufio.NewReader(sig)
	if first, err := br.Peek(1); err == nil && first[0] != 0x30 {
		text, err := io.ReadAll(io.LimitReader(br, maxTextSignature+1))
		if err != nil {
			return nil, err
		}
		if len(text) > maxTextSignature {
			return nil, fmt.Errorf("signature %s is text (PEM or base64) of more than %s; give a large signature as DER", sig.Name(), readfile.Size(maxTextSignature))
		}
		return cms.VerifyReader(bytes.NewReader(bindsign.DecodeSignature(text)), doc, opts)
	}
	return cms.VerifyReader(br, doc, opts)
}

func printJSON(io stdio, v any) error {
	enc := json.NewEncoder(io.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printVerdict prints one line per check, then who signed and when, then the problems.
func printVerdict(io stdio, v *cms.Verdict, contentPath string) {
	mark := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "FAILED"
	}
	var content string
	switch {
	case v.Detached && contentPath == "":
		content = "detached signature, but no --content given"
	case v.Detached:
		content = "the detached document " + contentPath
	case contentPath != "":
		content = "the document embedded in the signature, compared with " + contentPath
	default:
		content = "the document embedded in the signature"
	}
	w := io.out
	fmt.Fprintf(w, "signature:  %s\n", mark(v.SignatureValid))
	fmt.Fprintf(w, "content:    %s (%s)\n", mark(v.ContentMatches), content)
	fmt.Fprintf(w, "chain:      %s (to the given roots, now)\n", mark(v.ChainTrusted))
	fmt.Fprintf(w, "validity:   %s (certificate valid at the signing time)\n", mark(v.CertValidAtSigningTime))
	subject, serial := v.Subject, v.Serial
	if v.Certificate == nil {
		subject, serial = "(certificate not found)", "-"
	}
	fmt.Fprintf(w, "signer:     %s\n", subject)
	fmt.Fprintf(w, "serial:     %s\n", serial)
	if v.HasSigningTime {
		fmt.Fprintf(w, "signed at:  %s (as the signer states it)\n", v.SigningTime.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "signed at:  (not stated)\n")
	}
	for _, p := range v.Problems {
		fmt.Fprintf(w, "problem:    %s\n", p)
	}
	if v.OK() {
		fmt.Fprintln(w, "result:     VERIFIED")
	} else {
		fmt.Fprintln(w, "result:     NOT VERIFIED")
	}
}

func failedChecks(v *cms.Verdict) string {
	var failed []string
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"signature", v.SignatureValid}, {"content", v.ContentMatches}, {"chain", v.ChainTrusted},
		{"validity at signing time", v.CertValidAtSigningTime},
	} {
		if !c.ok {
			failed = append(failed, c.name)
		}
	}
	if len(failed) == 0 {
		return strings.Join(v.Problems, "; ")
	}
	return "failed: " + strings.Join(failed, ", ")
}
