package agent

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	bindsign "github.com/tokenrun/tokenrun/bindings/sign"
)

// Operations a Request asks the person to allow.
const (
	OpSign    = "sign"     // sign the documents
	OpKeyInfo = "key_info" // show the page the certificate (getKeyInfo)
)

// Request is one request of a web page that needs the person: documents to sign, or a look
// at the certificate. The front-end that asks the person (Person) gets it whole, previews
// included; the sign_request procedure gets it as ctx.args without any document's content,
// which is what its transcript keeps.
type Request struct {
	ID        string // 16 hex digits, quoted by the consent page and the audit log
	Origin    string // the page, as its browser sent it and agent.origins allowed it
	Module    string // NCALayer's module and method: kz.gov.pki.knca.basics, sign
	Method    string
	Operation string // OpSign or OpKeyInfo
	Attached  bool   // the signatures hold the documents
	Digested  bool   // the documents are SHA-256 digests the page computed
	// ExtKeyUsage are the OIDs the signing certificate must hold (signerParams.extKeyUsageOids,
	// commonUtils' keyType); empty for any.
	ExtKeyUsage []string
	Documents   []Document
	Language    string // kk, ru or en: the page's locale, else the region's
	// Summary is one line for the person in Language: "https://ib.bank.kz: 3 documents to
	// sign, 12,400 bytes in all".
	Summary  string
	Received time.Time
}

// Document is one document of a Request as the person is shown it.
type Document struct {
	Index  int    // from 1
	Size   int    // bytes (32 for a digest)
	SHA256 string // hex: of the document, or the digest the page gave
	// Preview is the start of a text document (UTF-8 without control characters other than
	// tab and line breaks), at most PreviewRunes characters; "" for other documents and for
	// digests. Truncated says there is more.
	Preview   string
	Truncated bool
}

// PreviewRunes is how much of a text document the consent page is given to show.
const PreviewRunes = 2000

// newRequestID is 64 random bits in hex.
func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// describe fills in the documents as the person sees them.
func (r *Request) describe(docs []*bindsign.Document) {
	r.Documents = make([]Document, len(docs))
	for i, d := range docs {
		r.Documents[i] = Document{Index: d.Index(), Size: d.Size(), SHA256: d.SHA256()}
		if !d.Digested() {
			r.Documents[i].Preview, r.Documents[i].Truncated = preview(d.Content())
		}
	}
}

// TotalSize is the bytes of all documents.
func (r *Request) TotalSize() int {
	n := 0
	for _, d := range r.Documents {
		n += d.Size
	}
	return n
}

// preview is the start of b when b is text a person can read.
func preview(b []byte) (string, bool) {
	if len(b) == 0 || !utf8.Valid(b) {
		return "", false
	}
	var sb strings.Builder
	n := 0
	for _, r := range string(b) {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return "", false // not text: a binary format that happens to be valid UTF-8
		}
		if n == PreviewRunes {
			return sb.String(), true
		}
		sb.WriteRune(r)
		n++
	}
	return sb.String(), false
}

// args is the request as the sign_request procedure's ctx.args: no content, digests in.
func (r *Request) args() map[string]any {
	docs := make([]any, len(r.Documents))
	for i, d := range r.Documents {
		docs[i] = map[string]any{"index": d.Index, "size": d.Size, "sha256": d.SHA256}
	}
	eku := make([]any, len(r.ExtKeyUsage))
	for i, o := range r.ExtKeyUsage {
		eku[i] = o
	}
	return map[string]any{
		"operation": r.Operation, "origin": r.Origin, "method": r.Module + "." + r.Method, "request_id": r.ID,
		"attached": r.Attached, "digested": r.Digested, "ext_key_usage": eku, "documents": docs,
	}
}
