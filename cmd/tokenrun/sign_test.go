package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenrun/tokenrun/token"
	"github.com/tokenrun/tokenrun/token/pkcs11"
	"github.com/tokenrun/tokenrun/token/pkcs11/p11test"
	"github.com/tokenrun/tokenrun/token/soft"
	"github.com/tokenrun/tokenrun/ui"
)

// goCA is a throwaway certificate authority made in Go, standing in for the bank's.
type goCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	pemFile string // the root certificate, for --roots and openssl -CAfile
}

func newGoCA(t testing.TB, cn string) *goCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Test Bank"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "root.pem")
	require.NoError(t, os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return &goCA{cert: cert, key: key, pemFile: f}
}

// enrollKey generates a key on tok (logged in) with our token layer, and stores a
// certificate from ca for it next to it (same CKA_ID) unless ca is nil.
func enrollKey(t testing.TB, tok token.Token, ca *goCA, req token.KeyRequest, cn string) *token.Key {
	t.Helper()
	ctx := context.Background()
	key, err := tok.GenerateKey(ctx, req)
	require.NoError(t, err)
	if ca == nil {
		return key
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn, Organization: []string{"ACME LLP"}, Country: []string{"KZ"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(12 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public, ca.key)
	require.NoError(t, err)
	_, err = tok.StoreCertificate(ctx, token.CertificateRequest{DER: der, ID: key.ID, Label: req.Label})
	require.NoError(t, err)
	return key
}

// prepareToken logs in to the one token of p, runs fn, and closes p, so that the CLI opens
// the token afresh as a separate run would.
func prepareToken(t testing.TB, p token.Provider, pin string, fn func(tok token.Token)) {
	t.Helper()
	ctx := context.Background()
	defer p.Close()
	sel, err := token.Select(ctx, p, token.SelectOptions{})
	require.NoError(t, err)
	info, err := sel.One()
	require.NoError(t, err)
	tok, err := p.Open(ctx, info)
	require.NoError(t, err)
	defer tok.Close()
	require.NoError(t, tok.Login(ctx, token.User, pin))
	fn(tok)
}

// softSigner is a software token in a new directory with key "payments" (P-256) enrolled
// with ca, key "bare" without a certificate, and key "stale" whose id a certificate for
// another key has.
func softSigner(t *testing.T, ca *goCA) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tok")
	p, err := soft.Open(soft.Options{}, dir)
	require.NoError(t, err)
	prepareToken(t, p, "12345678", func(tok token.Token) {
		enrollKey(t, tok, ca, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "payments"}, "ACME LLP payments")
		enrollKey(t, tok, nil, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "bare"}, "")
		if ca == nil {
			return
		}
		stale := enrollKey(t, tok, nil, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "stale"}, "")
		other := enrollKey(t, tok, ca, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "other"}, "ACME LLP other")
		certs, err := tok.Certificates(context.Background())
		require.NoError(t, err)
		for _, c := range certs {
			if string(c.ID) == string(other.ID) {
				_, err = tok.StoreCertificate(context.Background(), token.CertificateRequest{DER: c.DER, ID: stale.ID, Label: "stale"})
				require.NoError(t, err)
			}
		}
	})
	return dir
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// documents writes n payment orders into a new directory.
func documents(t testing.TB, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i := range n {
		files = append(files, writeFile(t, filepath.Join(dir, "order-"+string(rune('a'+i))+".xml"),
			"<PaymentOrder n=\""+string(rune('a'+i))+"\" amount=\"100.00\"/>\n"))
	}
	return files
}

// opensslVerify runs `openssl cms -verify`, a verifier we did not write, on the DER
// signature sig; content is the document for a detached signature, "" for an attached one.
// It returns what OpenSSL says the signed document is.
func opensslVerify(t testing.TB, sig, content, caFile string) []byte {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		p11test.Unavailable(t, "openssl not found: apt-get install openssl")
	}
	out := filepath.Join(t.TempDir(), "doc")
	args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-CAfile", caFile, "-purpose", "any", "-out", out}
	if content != "" {
		args = append(args, "-content", content)
	}
	msg, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(t, err, "openssl %s: %s", strings.Join(args, " "), msg)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	return b
}

// TestSignOnSoftHSM2 is the batch job end to end on a real PKCS#11 module: keys made with our
// token layer, certificates from a Go CA stored next to them, three documents signed in one
// run, checked by OpenSSL and by tokenrun verify.
func TestSignOnSoftHSM2(t *testing.T) {
	module := p11test.SoftHSM(t)
	p11test.SoftHSMToken(t, "SIGN", "87654321", "12345678")
	ca := newGoCA(t, "Test Root")
	p, err := pkcs11.Open(module)
	require.NoError(t, err)
	prepareToken(t, p, "12345678", func(tok token.Token) {
		enrollKey(t, tok, ca, token.KeyRequest{Type: token.RSA, Bits: 2048, Label: "payments"}, "ACME LLP payments")
		enrollKey(t, tok, ca, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "ec"}, "ACME LLP EC")
		enrollKey(t, tok, nil, token.KeyRequest{Type: token.EC, Curve: "P-256", Label: "bare"}, "")
	})
	pinFile := writeFile(t, filepath.Join(t.TempDir(), "pin"), "12345678\n")
	uri := "pkcs11:token=SIGN;object=payments"
	docs := documents(t, 3)
	sign := func(t *testing.T, extra ...string) result {
		t.Helper()
		return tokenrun(t, "", append([]string{"sign", "--module", module, "--token", uri, "--pin-file", pinFile}, extra...)...)
	}

	t.Run("attached, three documents, one run", func(t *testing.T) {
		r := sign(t, "--in", docs[0], "--in", docs[1], "--in", docs[2])
		require.Equal(t, exitOK, r.code, r.err)
		assert.Contains(t, r.err, "Signed: 3 documents with the key payments on SIGN")
		assert.Contains(t, r.err, "certificate CN=ACME LLP payments,O=ACME LLP,C=KZ, serial")
		for _, d := range docs {
			assert.Contains(t, r.stdout, d+" -> "+d+".p7s")
			want, err := os.ReadFile(d)
			require.NoError(t, err)
			assert.Equal(t, want, opensslVerify(t, d+".p7s", "", ca.pemFile), "the embedded document")
			v := tokenrun(t, "", "verify", "--in", d+".p7s", "--roots", ca.pemFile)
			assert.Equal(t, exitOK, v.code, v.stdout+v.err)
		}
	})

	outDir := t.TempDir()
	t.Run("detached into --out-dir, documents as arguments", func(t *testing.T) {
		r := sign(t, "--detached", "--out-dir", outDir, docs[0], docs[1], docs[2])
		require.Equal(t, exitOK, r.code, r.err)
		for _, d := range docs {
			sig := filepath.Join(outDir, filepath.Base(d)+".p7s")
			opensslVerify(t, sig, d, ca.pemFile)
		}
	})

	sig0 := filepath.Join(outDir, filepath.Base(docs[0])+".p7s")
	tampered := writeFile(t, filepath.Join(t.TempDir(), "tampered.xml"), "<PaymentOrder n=\"a\" amount=\"900.00\"/>\n")
	other := newGoCA(t, "Another Root")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"good", []string{"--content", docs[0], "--roots", ca.pemFile}, exitOK,
			[]string{"signature:  ok", "content:    ok", "chain:      ok", "validity:   ok", "signer:     CN=ACME LLP payments,O=ACME LLP,C=KZ", "signed at:  ", "result:     VERIFIED"}},
		{"tampered content", []string{"--content", tampered, "--roots", ca.pemFile}, exitVerify,
			[]string{"signature:  ok", "content:    FAILED", "chain:      ok", "NOT VERIFIED", "signature NOT verified (failed: content)"}},
		{"wrong roots", []string{"--content", docs[0], "--roots", other.pemFile}, exitVerify,
			[]string{"content:    ok", "chain:      FAILED", "failed: chain"}},
		{"no content for a detached signature", []string{"--roots", ca.pemFile}, exitVerify,
			[]string{"content:    FAILED", "no --content given"}},
	} {
		t.Run("verify "+tt.name, func(t *testing.T) {
			r := tokenrun(t, "", append([]string{"verify", "--in", sig0}, tt.args...)...)
			assert.Equal(t, tt.code, r.code, r.stdout+r.err)
			for _, w := range tt.want {
				assert.Contains(t, r.stdout+r.err, w)
			}
		})
	}

	t.Run("verify --json", func(t *testing.T) {
		r := tokenrun(t, "", "verify", "--in", sig0, "--content", tampered, "--roots", ca.pemFile, "--json")
		assert.Equal(t, exitVerify, r.code, r.err)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
		assert.Equal(t, false, v["ok"])
		assert.Equal(t, true, v["signature_valid"])
		assert.Equal(t, false, v["content_matches"])
		assert.Equal(t, true, v["chain_trusted"])
		assert.Equal(t, true, v["cert_valid_at_signing_time"])
		assert.NotEmpty(t, v["serial"])
		assert.NotEmpty(t, v["problems"])
		_, err := time.Parse(time.RFC3339, v["signing_time"].(string))
		assert.NoError(t, err)
	})

	t.Run("P-256 key, --out, pin-source in the URI", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "one.p7s")
		r := tokenrun(t, "", "sign", "--module", module, "--token", "pkcs11:token=SIGN;object=ec?pin-source=file:"+pinFile,
			"--detached", "--in", docs[1], "--out", out)
		require.Equal(t, exitOK, r.code, r.err)
		opensslVerify(t, out, docs[1], ca.pemFile)
	})

	t.Run("outputs exist", func(t *testing.T) {
		before, err := os.ReadFile(docs[0] + ".p7s")
		require.NoError(t, err)
		r := sign(t, "--in", docs[0], "--in", docs[1])
		assert.Equal(t, exitUsage, r.code, r.err)
		assert.Contains(t, r.err, docs[0]+".p7s exists: give --force")
		after, err := os.ReadFile(docs[0] + ".p7s")
		require.NoError(t, err)
		assert.Equal(t, before, after, "untouched")

		r = sign(t, "--in", docs[0], "--in", docs[1], "--force")
		require.Equal(t, exitOK, r.code, r.err)
		opensslVerify(t, docs[0]+".p7s", "", ca.pemFile)
		entries, err := os.ReadDir(filepath.Dir(docs[0]))
		require.NoError(t, err)
		for _, e := range entries {
			assert.NotContains(t, e.Name(), ".tmp-", "no temporary file left")
		}
	})

	t.Run("wrong PIN", func(t *testing.T) {
		wrong := writeFile(t, filepath.Join(t.TempDir(), "pin"), "87870000\n")
		out := filepath.Join(t.TempDir(), "x.p7s")
		r := tokenrun(t, "", "sign", "--module", module, "--token", uri, "--pin-file", wrong, "--in", docs[0], "--out", out)
		assert.Equal(t, exitToken, r.code, r.err)
		assert.Contains(t, r.err, "Wrong password")
		assert.NotContains(t, r.stdout+r.err, "87870000")
		assert.NoFileExists(t, out)
	})

	t.Run("no certificate next to the key", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "x.p7s")
		r := tokenrun(t, "", "--debug", "sign", "--module", module, "--token", "pkcs11:token=SIGN;object=bare", "--pin-file", pinFile, "--in", docs[0], "--out", out)
		assert.Equal(t, exitToken, r.code, r.err)
		assert.Contains(t, r.err, "register first (tokenrun enroll)", "the person's line")
		assert.Contains(t, r.err, "no certificate next to key bare: enroll first", "--debug's")
		assert.NoFileExists(t, out)
	})
}

// TestSignPINSafety: the PIN counters are read before any login; a locked PIN is reported
// without a try, and the last try is never spent from a file or a pipe.
func TestSignPINSafety(t *testing.T) {
	ca := newGoCA(t, "Test Root")
	doc := documents(t, 1)[0]
	tests := []struct {
		name     string
		tries    int // user PIN tries left before the run
		pin      string
		stdin    string // no --pin-file when set
		code     int
		want     []string
		triesNow int
	}{
		{name: "locked", tries: 0, pin: "12345678", code: exitToken, want: []string{"is locked", "no login was tried", "unblock"}, triesNow: 0},
		{name: "final try from a file", tries: 1, pin: "12345678", code: exitRefused, want: []string{"one PIN try is left", "will not spend it from a file"}, triesNow: 1},
		{name: "final try from a pipe", tries: 1, stdin: "12345678\n", code: exitRefused, want: []string{"one PIN try is left"}, triesNow: 1},
		{name: "wrong PIN says the tries left", tries: 10, pin: "31415926", code: exitToken, want: []string{"Wrong password", "9 tries left"}, triesNow: 9},
		{name: "wrong PIN with two left", tries: 2, pin: "31415926", code: exitToken, want: []string{"one try is left"}, triesNow: 1},
		{name: "PIN from a pipe", tries: 10, stdin: "12345678\n", code: exitOK, want: []string{"Password of the token KAZTOKEN", "Signed: 1 document "}, triesNow: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := softSigner(t, ca)
			require.NoError(t, soft.SetTries(dir, token.User, tt.tries))
			args := []string{"sign", "--soft", dir, "--token", "pkcs11:object=payments", "--in", doc, "--out", filepath.Join(t.TempDir(), "s.p7s")}
			if tt.stdin == "" {
				args = append(args, "--pin-file", writeFile(t, filepath.Join(t.TempDir(), "pin"), tt.pin+"\n"))
			}
			r := tokenrun(t, tt.stdin, args...)
			assert.Equal(t, tt.code, r.code, r.err)
			for _, w := range tt.want {
				assert.Contains(t, r.err, w)
			}
			for _, secret := range []string{"12345678", "31415926"} {
				assert.NotContains(t, r.stdout+r.err, secret)
			}
			p, err := soft.Open(soft.Options{}, dir)
			require.NoError(t, err)
			defer p.Close()
			infos, err := p.Tokens(context.Background())
			require.NoError(t, err)
			require.Len(t, infos, 1)
			assert.Equal(t, tt.triesNow, infos[0].UserPIN.RetriesLeft, "tries left after the run")
		})
	}
}

func TestSignUsage(t *testing.T) {
	ca := newGoCA(t, "Test Root")
	dir := softSigner(t, ca)
	docs := documents(t, 2)
	pin := writeFile(t, filepath.Join(t.TempDir(), "pin"), "12345678")
	sameName := writeFile(t, filepath.Join(t.TempDir(), filepath.Base(docs[0])), "another order\n")
	existing := writeFile(t, filepath.Join(t.TempDir(), "exists.p7s"), "old")
	key := "pkcs11:object=payments"
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no documents", []string{"--token", key, "--pin-file", pin}, exitUsage, "sign needs documents"},
		{"--out with several documents", []string{"--token", key, "--pin-file", pin, "--in", docs[0], "--in", docs[1], "--out", "x.p7s"}, exitUsage, "use --out-dir"},
		{"--out and --out-dir", []string{"--token", key, "--pin-file", pin, "--in", docs[0], "--out", "x", "--out-dir", "."}, exitUsage, "either --out or --out-dir"},
		{"missing document", []string{"--token", key, "--pin-file", pin, "--in", "nothere.xml"}, exitUsage, "document nothere.xml does not exist"},
		{"same name in --out-dir", []string{"--token", key, "--pin-file", pin, "--in", docs[0], "--in", sameName, "--out-dir", t.TempDir()}, exitUsage, "would both be signed into"},
		{"output exists", []string{"--token", key, "--pin-file", pin, "--in", docs[0], "--out", existing}, exitUsage, "exists: give --force"},
		{"URI names no key", []string{"--token", "pkcs11:token=KAZTOKEN", "--pin-file", pin, "--in", docs[0]}, exitUsage, "--token must name the key"},
		{"URI names a certificate", []string{"--token", key + ";type=cert", "--pin-file", pin, "--in", docs[0]}, exitUsage, "type=cert"},
		{"two PIN sources", []string{"--token", key + "?pin-source=file:" + pin, "--pin-file", pin, "--in", docs[0]}, exitUsage, "not both"},
		{"pin-source command", []string{"--token", key + "?pin-source=%7Ccat%20pin", "--in", docs[0]}, exitUsage, "only files are read"},
		{"pin-value refused", []string{"--token", key + "?pin-value=12345678", "--in", docs[0]}, exitUsage, "pin-value is not accepted"},
		{"missing PIN file", []string{"--token", key, "--pin-file", "/nonexistent/pin", "--in", docs[0]}, exitUsage, "PIN file"},
		{"certificate next to the key is another key's", []string{"--token", "pkcs11:object=stale", "--pin-file", pin, "--in", docs[0]}, exitToken, "key stale: the certificate next to the key holds another public key"},
		{"no certificate next to the key", []string{"--token", "pkcs11:object=bare", "--pin-file", pin, "--in", docs[0]}, exitToken, "no certificate next to key bare: enroll first"},
		{"unknown key", []string{"--token", "pkcs11:object=nosuch", "--pin-file", pin, "--in", docs[0]}, exitToken, `key labelled "nosuch": not found (its keys: payments`},
		{"no token source", []string{"--token", key, "--pin-file", pin, "--in", docs[0]}, exitUsage, "no token source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// --debug: the technical line too (the person's line is the catalog's).
			args := append([]string{"--debug", "sign"}, tt.args...)
			if tt.name != "no token source" {
				args = append(args, "--soft", dir)
			}
			r := tokenrun(t, "", args...)
			assert.Equal(t, tt.code, r.code, r.err)
			assert.Contains(t, r.err, tt.want)
			assert.NotContains(t, r.stdout+r.err, "12345678")
		})
	}
	assert.NoFileExists(t, docs[0]+".p7s", "nothing signed by a failed run")
}

func TestVerifyUsage(t *testing.T) {
	ca := newGoCA(t, "Test Root")
	garbage := writeFile(t, filepath.Join(t.TempDir(), "garbage.p7s"), "not a signature")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no signature", []string{"--roots", ca.pemFile}, exitUsage, "verify needs the signature"},
		{"no roots", []string{"--in", garbage}, exitUsage, "--roots PEM"},
		{"roots not PEM", []string{"--in", garbage, "--roots", garbage}, exitUsage, "no PEM certificate found"},
		{"missing signature file", []string{"--in", "/nonexistent.p7s", "--roots", ca.pemFile}, exitUsage, "/nonexistent.p7s"},
		{"not a signature", []string{"--in", garbage, "--roots", ca.pemFile}, exitVerify, "cannot be checked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tokenrun(t, "", append([]string{"verify"}, tt.args...)...)
			assert.Equal(t, tt.code, r.code, r.err)
			assert.Contains(t, r.err, tt.want)
		})
	}
}

// TestSignThenVerifyOnSoftToken: the software token signs too, and a PEM signature (as
// `openssl cms -outform PEM` writes) verifies.
func TestSignThenVerifyOnSoftToken(t *testing.T) {
	ca := newGoCA(t, "Test Root")
	dir := softSigner(t, ca)
	doc := documents(t, 1)[0]
	pin := writeFile(t, filepath.Join(t.TempDir(), "pin"), "12345678\r\n")
	r := tokenrun(t, "", "sign", "--soft", dir, "--token", "pkcs11:token=KAZTOKEN;object=payments", "--pin-file", pin, "--detached", doc)
	require.Equal(t, exitOK, r.code, r.err)
	opensslVerify(t, doc+".p7s", doc, ca.pemFile)

	der, err := os.ReadFile(doc + ".p7s")
	require.NoError(t, err)
	pemSig := writeFile(t, filepath.Join(t.TempDir(), "s.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CMS", Bytes: der})))
	r = tokenrun(t, "", "verify", "--in", pemSig, "--content", doc, "--roots", ca.pemFile)
	assert.Equal(t, exitOK, r.code, r.stdout+r.err)
}

// TestSignFinalTryNeedsAPerson: with one try left, a person at the terminal is asked (the
// prompt a person-only one, with a warning) and a right PIN resets the counter; the end of
// their input cancels.
func TestSignFinalTryNeedsAPerson(t *testing.T) {
	ca := newGoCA(t, "Test Root")
	doc := documents(t, 1)[0]
	for _, tt := range []struct {
		name  string
		stdin string
		code  int
		tries int
	}{
		{"right PIN", "12345678\n", exitOK, 10},
		{"input closed", "", exitCancelled, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := softSigner(t, ca)
			require.NoError(t, soft.SetTries(dir, token.User, 1))
			p, err := soft.Open(soft.Options{}, dir)
			require.NoError(t, err)
			defer p.Close()
			var out, errOut strings.Builder
			io := stdio{in: strings.NewReader(tt.stdin), out: &out, err: &errOut}
			// Interactive: what a person at a real terminal gets, fed through a pipe.
			fe := ui.NewTerminal(io.in, io.err, ui.TerminalOptions{Interactive: true})
			jobs, err := planOutputs([]string{doc}, filepath.Join(t.TempDir(), "s.p7s"), "", false)
			require.NoError(t, err)
			err = signFiles(context.Background(), signSpec{provider: p, uri: &token.URI{Object: "payments"}, jobs: jobs, frontend: fe, stdio: io})
			assert.Equal(t, tt.code, exitCode(err), "%v", err)
			assert.Contains(t, errOut.String(), "Only ONE try is left")
			assert.NotContains(t, out.String()+errOut.String(), "12345678")
			infos, err := p.Tokens(context.Background())
			require.NoError(t, err)
			assert.Equal(t, tt.tries, infos[0].UserPIN.RetriesLeft)
		})
	}
}

// TestRunHasModuleSign: procedures run by `tokenrun run` can require("sign").
func TestRunHasModuleSign(t *testing.T) {
	dir := softSigner(t, newGoCA(t, "Test Root"))
	r := tokenrun(t, "", "run", "--soft", dir, "--answers", td+"answers/tour.yaml", td+"scripts/sign_order.lua")
	require.Equal(t, exitOK, r.code, r.err)
	assert.Contains(t, r.err, "signed: signature true, content true, signer CN=ACME LLP payments,O=ACME LLP,C=KZ")
	assert.Contains(t, r.err, "sign_order 1.0.0: done")

	// A key without a certificate: the procedure's expected failure is a token exit code.
	r = tokenrun(t, "", "run", "--soft", softSigner(t, nil), "--answers", td+"answers/tour.yaml", td+"scripts/sign_order.lua")
	assert.Equal(t, exitToken, r.code, r.err)
	assert.Contains(t, r.err, "no certificate next to key payments: enroll first")
}
