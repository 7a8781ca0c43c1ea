package cms

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/smallstep/pkcs7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runOpenSSL runs openssl with args and returns its exit error and combined output.
func runOpenSSL(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// TestOpenSSLVerifiesOurs: every kind of signature we make is accepted by OpenSSL, the tool
// a bank or auditor would check them with.
func TestOpenSSLVerifiesOurs(t *testing.T) {
	bin := opensslPath(t)
	pki := newPKI(t, "OpenSSL")
	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.pem", certPEM(pki.root))
	docFile := writeFile(t, dir, "order.xml", paymentOrder)

	for _, kind := range []string{kindRSA2048, kindP256, kindP384, kindP521} {
		key := tokenKey(t, kind, "signer")
		cert := pki.issueNow(t, key.Public(), "Signer "+kind)
		for _, detached := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/detached=%v", kind, detached), func(t *testing.T) {
				sig, err := Sign(paymentOrder, key, cert, SignOptions{Detached: detached, Chain: []*x509.Certificate{pki.inter}})
				require.NoError(t, err)
				sigFile := writeFile(t, dir, fmt.Sprintf("%s-%v.p7s", kind, detached), sig)
				outFile := filepath.Join(dir, fmt.Sprintf("%s-%v.out", kind, detached))
				args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile,
					"-CAfile", caFile, "-purpose", "any", "-out", outFile}
				if detached {
					args = append(args, "-content", docFile)
				}
				out, err := runOpenSSL(t, bin, args...)
				require.NoError(t, err, out)
				assert.Contains(t, out, "Verification successful")
				got, err := os.ReadFile(outFile)
				require.NoError(t, err)
				assert.Equal(t, paymentOrder, got, "content OpenSSL recovered")

				if detached {
					// The check has teeth: OpenSSL refuses a different document.
					other := writeFile(t, dir, "other.xml", append(bytes.Clone(paymentOrder), ' '))
					out, err := runOpenSSL(t, bin, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile,
						"-CAfile", caFile, "-purpose", "any", "-content", other, "-out", os.DevNull)
					assert.Error(t, err, out)
					assert.Contains(t, out, "Verification failure")
				}
			})
		}
	}
}

// TestVerifyAcceptsOpenSSL: our Verify accepts what OpenSSL makes with a key in a file, in
// the forms other tools produce too (BER from streaming, no attributes, key identifier).
// `openssl cms -sign` makes a detached signature unless given -nodetach.
func TestVerifyAcceptsOpenSSL(t *testing.T) {
	bin := opensslPath(t)
	pki := newPKI(t, "FromOpenSSL")
	dir := t.TempDir()
	docFile := writeFile(t, dir, "order.xml", paymentOrder)
	interFile := writeFile(t, dir, "inter.pem", certPEM(pki.inter))

	type signerFiles struct {
		cert          *x509.Certificate
		certF, keyF   string
		kind, keyName string
	}
	files := map[string]signerFiles{}
	signer := func(kind, name string) signerFiles {
		if f, ok := files[kind+name]; ok {
			return f
		}
		k := rawKey(t, kind, name)
		c := pki.issueNow(t, k.Public(), "OpenSSL signer "+kind+" "+name)
		f := signerFiles{
			cert:  c,
			certF: writeFile(t, dir, kind+name+".crt", certPEM(c)),
			keyF:  writeFile(t, dir, kind+name+".key", keyPEM(t, k)),
			kind:  kind, keyName: name,
		}
		files[kind+name] = f
		return f
	}

	type want struct {
		ok, detached, hasTime bool
		hash                  crypto.Hash
		problem               string
	}
	tests := []struct {
		name  string
		kind  string
		extra []string
		want  want
	}{
		{"rsa attached", kindRSA2048, []string{"-nodetach"}, want{ok: true, hasTime: true, hash: crypto.SHA256}},
		{"rsa detached", kindRSA2048, nil, want{ok: true, detached: true, hasTime: true, hash: crypto.SHA256}},
		{"rsa sha-512", kindRSA2048, []string{"-nodetach", "-md", "sha512"}, want{ok: true, hasTime: true, hash: crypto.SHA512}},
		{"p256 attached", kindP256, []string{"-nodetach"}, want{ok: true, hasTime: true, hash: crypto.SHA256}},
		{"p256 detached", kindP256, nil, want{ok: true, detached: true, hasTime: true, hash: crypto.SHA256}},
		{"p384 attached sha-384", kindP384, []string{"-nodetach", "-md", "sha384"}, want{ok: true, hasTime: true, hash: crypto.SHA384}},
		{"p384 detached", kindP384, nil, want{ok: true, detached: true, hasTime: true}},
		{"streamed BER attached", kindP256, []string{"-nodetach", "-stream"}, want{ok: true, hasTime: true, hash: crypto.SHA256}},
		// Streaming to DER, OpenSSL embeds the content even without -nodetach.
		{"streamed BER rsa", kindRSA2048, []string{"-stream"}, want{ok: true, hasTime: true, hash: crypto.SHA256}},
		{"signer by key identifier", kindP256, []string{"-nodetach", "-keyid"}, want{ok: true, hasTime: true, hash: crypto.SHA256}},
		{"no signed attributes, rsa", kindRSA2048, []string{"-nodetach", "-noattr"},
			want{hash: crypto.SHA256, problem: "no signing-time attribute"}},
		{"no signed attributes, ecdsa detached", kindP256, []string{"-noattr"},
			want{detached: true, hash: crypto.SHA256, problem: "no signing-time attribute"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := signer(tc.kind, "a")
			sigFile := filepath.Join(dir, "sig.der")
			args := append([]string{"cms", "-sign", "-binary", "-outform", "DER", "-in", docFile,
				"-signer", f.certF, "-inkey", f.keyF, "-certfile", interFile, "-out", sigFile}, tc.extra...)
			out, err := runOpenSSL(t, bin, args...)
			require.NoError(t, err, out)
			sig, err := os.ReadFile(sigFile)
			require.NoError(t, err)

			var content []byte
			if tc.want.detached {
				content = paymentOrder
			}
			v, err := Verify(sig, content, VerifyOptions{Roots: pki.roots})
			require.NoError(t, err)
			assert.Equal(t, tc.want.ok, v.OK(), "problems: %q", v.Problems)
			assert.True(t, v.SignatureValid, v.Problems)
			assert.True(t, v.ContentMatches, v.Problems)
			assert.True(t, v.ChainTrusted, v.Problems)
			assert.Equal(t, tc.want.hasTime, v.HasSigningTime)
			assert.Equal(t, tc.want.hasTime, v.CertValidAtSigningTime)
			assert.Equal(t, tc.want.detached, v.Detached)
			assert.Equal(t, f.cert.Raw, v.Certificate.Raw)
			if tc.want.hash != 0 {
				assert.Equal(t, tc.want.hash, v.Hash)
			}
			if !tc.want.detached {
				assert.Equal(t, paymentOrder, v.Content)
			}
			if tc.want.problem != "" {
				assert.Contains(t, joined(v.Problems), tc.want.problem)
			}

			// And each refuses an altered document.
			altered := append(bytes.Clone(paymentOrder), '!')
			if !tc.want.detached {
				altered = nil
				sig = flipAt(t, sig, []byte("150000"), 0)
			}
			v, err = Verify(sig, altered, VerifyOptions{Roots: pki.roots})
			require.NoError(t, err)
			assert.False(t, v.OK())
			assert.False(t, v.ContentMatches)
		})
	}

	t.Run("without certificates", func(t *testing.T) {
		f := signer(kindP256, "a")
		sigFile := filepath.Join(dir, "nocerts.der")
		out, err := runOpenSSL(t, bin, "cms", "-sign", "-binary", "-outform", "DER", "-nodetach", "-nocerts",
			"-in", docFile, "-signer", f.certF, "-inkey", f.keyF, "-out", sigFile)
		require.NoError(t, err, out)
		sig, err := os.ReadFile(sigFile)
		require.NoError(t, err)

		v, err := Verify(sig, nil, VerifyOptions{Roots: pki.roots})
		require.NoError(t, err)
		assert.False(t, v.OK())
		assert.Contains(t, joined(v.Problems), "neither in the message")

		v, err = Verify(sig, nil, VerifyOptions{Roots: pki.roots, Intermediates: poolOf(pki.inter),
			Certificates: []*x509.Certificate{f.cert}})
		require.NoError(t, err)
		assert.True(t, v.OK(), v.Problems)
	})

	t.Run("two signers", func(t *testing.T) {
		a, b := signer(kindP256, "a"), signer(kindRSA2048, "a")
		sigFile := filepath.Join(dir, "two.der")
		out, err := runOpenSSL(t, bin, "cms", "-sign", "-binary", "-outform", "DER", "-nodetach", "-in", docFile,
			"-signer", a.certF, "-inkey", a.keyF, "-signer", b.certF, "-inkey", b.keyF, "-out", sigFile)
		require.NoError(t, err, out)
		sig, err := os.ReadFile(sigFile)
		require.NoError(t, err)
		_, err = Verify(sig, nil, VerifyOptions{Roots: pki.roots})
		assert.ErrorIs(t, err, ErrUnsupported)
		assert.Contains(t, err.Error(), "2 signers")
	})

	t.Run("not signed data", func(t *testing.T) {
		// A certificate bundle: SignedData with no signers, what `openssl crl2pkcs7` makes.
		bundle := filepath.Join(dir, "bundle.p7b")
		out, err := runOpenSSL(t, bin, "crl2pkcs7", "-nocrl", "-certfile", interFile, "-outform", "DER", "-out", bundle)
		require.NoError(t, err, out)
		b, err := os.ReadFile(bundle)
		require.NoError(t, err)
		_, err = Verify(b, nil, VerifyOptions{Roots: pki.roots})
		assert.ErrorIs(t, err, ErrMalformed)
		assert.Contains(t, err.Error(), "no signers")
	})
}

// TestSmallstepAgrees checks against a second implementation that needs no tools installed:
// smallstep/pkcs7 verifies what we sign, and we verify what it signs (with the combined
// sha256WithRSAEncryption / ecdsa-with-SHA256 identifiers, which OpenSSL does not write).
func TestSmallstepAgrees(t *testing.T) {
	pki := newPKI(t, "Smallstep")
	for _, kind := range []string{kindRSA2048, kindP256, kindP384} {
		key := tokenKey(t, kind, "signer")
		cert := pki.issueNow(t, key.Public(), "Signer "+kind)
		for _, detached := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/detached=%v", kind, detached), func(t *testing.T) {
				sig, err := Sign(paymentOrder, key, cert, SignOptions{Detached: detached, Chain: []*x509.Certificate{pki.inter}})
				require.NoError(t, err)
				p7, err := pkcs7.Parse(sig)
				require.NoError(t, err)
				if detached {
					p7.Content = paymentOrder
				}
				assert.NoError(t, p7.VerifyWithChain(pki.roots))

				sd, err := pkcs7.NewSignedData(paymentOrder)
				require.NoError(t, err)
				sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
				require.NoError(t, sd.AddSignerChain(cert, key, []*x509.Certificate{pki.inter}, pkcs7.SignerInfoConfig{}))
				var content []byte
				if detached {
					sd.Detach()
					content = paymentOrder
				}
				theirs, err := sd.Finish()
				require.NoError(t, err)
				v, err := Verify(theirs, content, VerifyOptions{Roots: pki.roots})
				require.NoError(t, err)
				assert.True(t, v.OK(), v.Problems)
			})
		}
	}
}
