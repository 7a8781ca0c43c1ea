package sign

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"github.com/tokenrun/tokenrun/bindings/errcode"
	bindtoken "github.com/tokenrun/tokenrun/bindings/token"
	"github.com/tokenrun/tokenrun/cms"
	"github.com/tokenrun/tokenrun/runtime"
	"github.com/tokenrun/tokenrun/token"
)

// DocumentType is the Lua type of a document the host hands a run to sign.
const DocumentType = "sign.Document"

// Document is one document the host hands a run to sign (a web page's, through the signing
// agent). A script sees its size and digest, never its content: the content, and the
// signature made over it (an attached one holds the content), stay here for the host, so
// that neither reaches the script's values, its transcript or a log. Safe for use by the
// run and the host at once.
type Document struct {
	index    int
	content  []byte
	digested bool
	sha256   string

	mu     sync.Mutex
	sig    []byte
	cert   *x509.Certificate
	signed bool
}

// NewDocument is document index (from 1) of a request. With digested, content is the
// SHA-256 digest of a document the requester hashed itself, and a signature over it is
// detached.
func NewDocument(index int, content []byte, digested bool) *Document {
	d := &Document{index: index, content: content, digested: digested}
	if digested {
		d.sha256 = hex.EncodeToString(content)
	} else {
		sum := sha256.Sum256(content)
		d.sha256 = hex.EncodeToString(sum[:])
	}
	return d
}

// Index is the document's place in its request, from 1.
func (d *Document) Index() int { return d.index }

// Size is the length of the content in bytes (of the digest, for a digested document).
func (d *Document) Size() int { return len(d.content) }

// SHA256 is the hex SHA-256 of the document: of its content, or the digest given.
func (d *Document) SHA256() string { return d.sha256 }

// Digested reports whether the content is the document's digest.
func (d *Document) Digested() bool { return d.digested }

// Content is the document (the digest, for a digested one). The host's, never a script's.
func (d *Document) Content() []byte { return d.content }

// Signature is the DER CMS signature a run made over the document and the certificate it was
// made with; ok is false while it has none.
func (d *Document) Signature() (sig []byte, cert *x509.Certificate, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sig, d.cert, d.signed
}

func (d *Document) fields() map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return map[string]any{"index": d.index, "size": len(d.content), "sha256": d.sha256, "digested": d.digested, "signed": d.signed}
}

// documentFields is the Fields func of DocumentType.
func documentFields(v any) map[string]any { return v.(*Document).fields() }

// documentList is sign.documents for a run handed docs.
func documentList(docs []*Document) lua.LGFunction {
	return func(L *lua.LState) int {
		t := L.CreateTable(len(docs), 0)
		for _, d := range docs {
			t.Append(runtime.NewUserData(L, DocumentType, d))
		}
		L.Push(t)
		return 1
	}
}

// signDocument is sign.cms with opts.document: the signature is kept with the document and
// the script gets true.
func signDocument(L *lua.LState, d *Document, ref *bindtoken.KeyRef, cert *x509.Certificate, detached bool) int {
	if d.digested && !detached {
		return runtime.Fail(L, errcode.InvalidInput, "a digested document is signed detached: its content is not there to attach", nil)
	}
	signer, err := ref.Signer(runtime.Context(L))
	if err != nil {
		return push(L, err)
	}
	opts := cms.SignOptions{Detached: detached}
	if d.digested {
		opts.Hash = crypto.SHA256 // the digest given is SHA-256 (the agent checks its length)
	}
	s, err := cms.NewSigner(signer, cert, opts)
	if err != nil {
		return push(L, err)
	}
	var der []byte
	if d.digested {
		der, err = s.SignDigest(d.content)
	} else {
		der, err = s.Sign(d.content)
	}
	if err != nil {
		return push(L, err)
	}
	d.mu.Lock()
	d.sig, d.cert, d.signed = der, cert, true
	d.mu.Unlock()
	L.Push(lua.LTrue)
	return 1
}

// certificateFor is the certificate sign.cms signs with: opts.cert when given, else the one
// on the key's token with the key's id.
func certificateFor(L *lua.LState, ref *bindtoken.KeyRef, certText string, given bool) (*x509.Certificate, int) {
	if given {
		c, err := ParseCertificate([]byte(certText))
		if err != nil {
			return nil, runtime.Fail(L, errcode.Malformed, "cert: "+err.Error(), nil)
		}
		return c, 0
	}
	c, err := token.CertificateFor(runtime.Context(L), ref.Token, ref.Key)
	if err != nil {
		return nil, push(L, err)
	}
	return c, 0
}
