package cms

import (
	"bufio"
	"bytes"
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// maxStreamPart bounds each part of a streamed signature other than the document: the
// certificates and the SignerInfos are a few KiB (a chain of a dozen RSA-4096 certificates is
// under 30 KiB), so a message claiming megabytes there is not a signature to read into memory.
const maxStreamPart = 16 << 20

// VerifyReader is Verify for a signature read from sig and a detached document read from
// content (nil for an attached signature), hashing the document as it is read: neither the
// document nor an attached signature's embedded copy of it is held in memory, so the
// memory used does not depend on the document's size. The signature may be DER or BER
// (definite or indefinite lengths, the content in one OCTET STRING or in segments, as
// `openssl cms -stream` writes). Verdict.Content stays nil; Verdict.ContentSize is the
// embedded document's size. When an attached signature is given content too, the two are
// compared by digest.
func VerifyReader(sig io.Reader, content io.Reader, opts VerifyOptions) (*Verdict, error) {
	r := &berReader{r: bufio.NewReaderSize(sig, chunk)}
	sd, hashes, size, err := r.readSignedData()
	if err != nil {
		return nil, err
	}
	if len(sd.signers) > 1 {
		return nil, unsupportedf("%d signers: only single-signer messages are verified", len(sd.signers))
	}
	si := sd.signers[0]
	h, known := hashForOID(si.digestAlg)
	doc := docInfo{streamed: true}
	if sd.hasContent {
		doc.present, doc.embedded, doc.size = true, true, size
		if hh, ok := hashes[h]; known && ok {
			doc.digest = hh.Sum(nil)
		}
		if content != nil && known {
			given := h.New()
			if _, err := io.CopyBuffer(given, content, make([]byte, chunk)); err != nil {
				return nil, fmt.Errorf("cms: reading the content: %w", err)
			}
			doc.differs = doc.digest == nil || !bytes.Equal(given.Sum(nil), doc.digest)
		}
	} else if content != nil {
		doc.present = true
		if known {
			hh := h.New()
			if _, err := io.CopyBuffer(hh, content, make([]byte, chunk)); err != nil {
				return nil, fmt.Errorf("cms: reading the content: %w", err)
			}
			doc.digest = hh.Sum(nil)
		}
	}
	return verdict(sd, doc, opts), nil
}

// berReader reads BER elements from a stream, counting offsets for messages.
type berReader struct {
	r   *bufio.Reader
	off int64
}

// header is one element's tag and length; length < 0 means indefinite.
type header struct {
	at          int64
	tag         byte // low-tag-number form only: CMS's structure needs no other
	constructed bool
	length      int64
	raw         []byte
}

func (b *berReader) byte1() (byte, error) {
	c, err := b.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, malformedf("truncated: the message ends at offset %d", b.off)
		}
		return 0, fmt.Errorf("cms: reading the signature: %w", err)
	}
	b.off++
	return c, nil
}

func (b *berReader) readHeader() (header, error) {
	h := header{at: b.off}
	first, err := b.byte1()
	if err != nil {
		return h, err
	}
	if first&0x1f == 0x1f {
		return h, malformedf("unexpected high-number tag at offset %d", h.at)
	}
	h.tag, h.constructed = first, first&0x20 != 0
	h.raw = append(h.raw, first)
	lb, err := b.byte1()
	if err != nil {
		return h, err
	}
	h.raw = append(h.raw, lb)
	switch {
	case lb < 0x80:
		h.length = int64(lb)
	case lb == 0x80:
		if !h.constructed {
			return h, malformedf("not DER: primitive element at offset %d has an indefinite length", h.at)
		}
		h.length = -1
	case lb == 0xff || lb&0x7f > 4:
		return h, malformedf("not DER: element at offset %d has a bad length octet 0x%02x", h.at, lb)
	default:
		for i := 0; i < int(lb&0x7f); i++ {
			c, err := b.byte1()
			if err != nil {
				return h, err
			}
			h.raw = append(h.raw, c)
			h.length = h.length<<8 | int64(c)
		}
	}
	return h, nil
}

// expect reads a header with the given tag.
func (b *berReader) expect(tag byte, what string) (header, error) {
	h, err := b.readHeader()
	if err != nil {
		return h, err
	}
	if h.tag != tag {
		return h, malformedf("%s expected at offset %d (tag 0x%02x), found tag 0x%02x", what, h.at, tag, h.tag)
	}
	return h, nil
}

// body reads the rest of an element whose header is h, whole, as DER (header included),
// within max bytes.
func (b *berReader) element(h header, max int64) ([]byte, error) {
	var raw bytes.Buffer
	raw.Write(h.raw)
	if err := b.copyElement(&raw, h, max, 0); err != nil {
		return nil, err
	}
	if int64(raw.Len()) > max {
		return nil, malformedf("element at offset %d is larger than %d bytes", h.at, max)
	}
	der, err := toDER(raw.Bytes())
	if err != nil {
		return nil, malformedf("%v", err)
	}
	return der, nil
}

// copyElement copies the body of the element h (already read) to w, bounded by max.
func (b *berReader) copyElement(w *bytes.Buffer, h header, max int64, depth int) error {
	if depth > maxDepth {
		return malformedf("not DER: nested more than %d deep at offset %d", maxDepth, h.at)
	}
	if h.length >= 0 {
		if int64(w.Len())+h.length > max {
			return malformedf("element at offset %d is larger than %d bytes", h.at, max)
		}
		n, err := io.CopyN(w, b.r, h.length)
		b.off += n
		if err != nil {
			return malformedf("truncated: element at offset %d needs %d bytes, %d remain", h.at, h.length, n)
		}
		return nil
	}
	for {
		c, err := b.readHeader()
		if err != nil {
			return err
		}
		w.Write(c.raw)
		if c.tag == 0 && c.length == 0 {
			return nil
		}
		if int64(w.Len()) > max {
			return malformedf("element at offset %d is larger than %d bytes", h.at, max)
		}
		if err := b.copyElement(w, c, max, depth+1); err != nil {
			return err
		}
	}
}

// end reads the end-of-contents octets closing h if its length is indefinite.
func (b *berReader) end(h header, what string) error {
	if h.length >= 0 {
		return nil
	}
	c, err := b.readHeader()
	if err != nil {
		return err
	}
	if c.tag != 0 || c.length != 0 {
		return malformedf("%s: extra data at offset %d", what, c.at)
	}
	return nil
}

// within checks that the element h, started at h.at, ended where its definite length says.
func (b *berReader) within(h header, what string) error {
	if h.length >= 0 && b.off != h.at+int64(len(h.raw))+h.length {
		return malformedf("%s: its contents do not end where its length says (offset %d)", what, b.off)
	}
	return nil
}

// readSignedData reads a ContentInfo with SignedData, hashing the embedded content, if any,
// with every digest in digestAlgorithms as it goes by.
func (b *berReader) readSignedData() (*signedData, map[crypto.Hash]hash.Hash, int64, error) {
	first, err := b.r.Peek(1)
	if err != nil {
		return nil, nil, 0, malformedf("empty input")
	}
	if first[0] != 0x30 {
		return nil, nil, 0, malformedf("not DER: starts with 0x%02x, but a CMS ContentInfo is a SEQUENCE (0x30)", first[0])
	}
	ci, err := b.expect(0x30, "ContentInfo")
	if err != nil {
		return nil, nil, 0, err
	}
	oidH, err := b.expect(0x06, "ContentInfo contentType")
	if err != nil {
		return nil, nil, 0, err
	}
	oidDER, err := b.element(oidH, 64)
	if err != nil {
		return nil, nil, 0, err
	}
	var ct asn1.ObjectIdentifier
	if s := cryptobyte.String(oidDER); !s.ReadASN1ObjectIdentifier(&ct) {
		return nil, nil, 0, malformedf("not a CMS ContentInfo (SEQUENCE { contentType, [0] content })")
	}
	if !ct.Equal(oidSignedData) {
		return nil, nil, 0, malformedf("not SignedData: the content type is %s", contentTypeName(ct))
	}
	explicit, err := b.expect(0xa0, "ContentInfo content [0]")
	if err != nil {
		return nil, nil, 0, err
	}
	sdH, err := b.expect(0x30, "SignedData")
	if err != nil {
		return nil, nil, 0, err
	}

	versionH, err := b.expect(0x02, "SignedData version")
	if err != nil {
		return nil, nil, 0, err
	}
	if _, err := b.element(versionH, 16); err != nil {
		return nil, nil, 0, err
	}
	algsH, err := b.expect(0x31, "SignedData digestAlgorithms")
	if err != nil {
		return nil, nil, 0, err
	}
	algsDER, err := b.element(algsH, 4096)
	if err != nil {
		return nil, nil, 0, err
	}
	hashes := map[crypto.Hash]hash.Hash{}
	algs := cryptobyte.String(algsDER)
	var set cryptobyte.String
	if !algs.ReadASN1(&set, cbasn1.SET) {
		return nil, nil, 0, malformedf("SignedData: digestAlgorithms missing")
	}
	for !set.Empty() {
		var oid asn1.ObjectIdentifier
		if !readAlgorithm(&set, &oid) {
			return nil, nil, 0, malformedf("SignedData: digestAlgorithms malformed")
		}
		if h, ok := hashForOID(oid); ok && hashes[h] == nil {
			hashes[h] = h.New()
		}
	}

	out := &signedData{}
	eci, err := b.expect(0x30, "SignedData encapContentInfo")
	if err != nil {
		return nil, nil, 0, err
	}
	eoidH, err := b.expect(0x06, "encapContentInfo eContentType")
	if err != nil {
		return nil, nil, 0, err
	}
	eoid, err := b.element(eoidH, 64)
	if err != nil {
		return nil, nil, 0, err
	}
	if s := cryptobyte.String(eoid); !s.ReadASN1ObjectIdentifier(&out.contentType) {
		return nil, nil, 0, malformedf("SignedData: encapContentInfo malformed")
	}
	var size int64
	if eci.length < 0 || b.off < eci.at+int64(len(eci.raw))+eci.length {
		ec, err := b.readHeader()
		if err != nil {
			return nil, nil, 0, err
		}
		switch {
		case eci.length < 0 && ec.tag == 0 && ec.length == 0:
			// end of an indefinite encapContentInfo without content
		case ec.tag == 0xa0:
			w := make([]io.Writer, 0, len(hashes))
			for _, h := range hashes {
				w = append(w, h)
			}
			oct, err := b.readHeader()
			if err != nil {
				return nil, nil, 0, err
			}
			if oct.tag != 0x04 && oct.tag != 0x24 {
				return nil, nil, 0, malformedf("SignedData: eContent is not an OCTET STRING")
			}
			if size, err = b.octets(io.MultiWriter(w...), oct, 0); err != nil {
				return nil, nil, 0, err
			}
			out.hasContent = true
			if err := b.end(ec, "eContent"); err != nil {
				return nil, nil, 0, err
			}
			if err := b.within(ec, "eContent"); err != nil {
				return nil, nil, 0, err
			}
			if err := b.end(eci, "encapContentInfo"); err != nil {
				return nil, nil, 0, err
			}
		default:
			return nil, nil, 0, malformedf("SignedData: encapContentInfo malformed")
		}
	}
	if err := b.within(eci, "encapContentInfo"); err != nil {
		return nil, nil, 0, err
	}

	// The rest of SignedData (certificates, crls, signerInfos) is small: read it whole and
	// parse it as Verify does.
	var rest []byte
	for {
		if sdH.length >= 0 && b.off >= sdH.at+int64(len(sdH.raw))+sdH.length {
			break
		}
		h, err := b.readHeader()
		if err != nil {
			return nil, nil, 0, err
		}
		if sdH.length < 0 && h.tag == 0 && h.length == 0 {
			break
		}
		el, err := b.element(h, maxStreamPart)
		if err != nil {
			return nil, nil, 0, err
		}
		rest = append(rest, el...)
		if len(rest) > 4*maxStreamPart {
			return nil, nil, 0, malformedf("SignedData: more than %d bytes besides the content", 4*maxStreamPart)
		}
	}
	if err := b.within(sdH, "SignedData"); err != nil {
		return nil, nil, 0, err
	}
	if err := b.end(explicit, "ContentInfo content"); err != nil {
		return nil, nil, 0, err
	}
	if err := b.within(explicit, "ContentInfo content"); err != nil {
		return nil, nil, 0, err
	}
	if err := b.end(ci, "ContentInfo"); err != nil {
		return nil, nil, 0, err
	}
	if err := b.within(ci, "ContentInfo"); err != nil {
		return nil, nil, 0, err
	}
	if _, err := b.r.Peek(1); err == nil {
		return nil, nil, 0, malformedf("trailing data after the message (which ends at offset %d)", b.off)
	}
	if err := parseSignedDataTail(cryptobyte.String(rest), out); err != nil {
		return nil, nil, 0, err
	}
	return out, hashes, size, nil
}

// octets streams the contents of an OCTET STRING, primitive or constructed (segments, each
// an OCTET STRING), to w and returns how many bytes it held.
func (b *berReader) octets(w io.Writer, h header, depth int) (int64, error) {
	if depth > maxDepth {
		return 0, malformedf("not DER: nested more than %d deep at offset %d", maxDepth, h.at)
	}
	if !h.constructed {
		if h.tag != 0x04 {
			return 0, malformedf("not DER: constructed OCTET STRING at offset %d holds a segment with tag 0x%02x", h.at, h.tag)
		}
		n, err := io.CopyN(w, b.r, h.length)
		b.off += n
		if err != nil {
			return n, malformedf("truncated: the content at offset %d needs %d bytes, %d remain", h.at, h.length, n)
		}
		return n, nil
	}
	if h.tag != 0x24 {
		return 0, malformedf("not DER: constructed OCTET STRING at offset %d holds a segment with tag 0x%02x", h.at, h.tag)
	}
	var total int64
	for {
		if h.length >= 0 && b.off >= h.at+int64(len(h.raw))+h.length {
			break
		}
		c, err := b.readHeader()
		if err != nil {
			return total, err
		}
		if h.length < 0 && c.tag == 0 && c.length == 0 {
			break
		}
		n, err := b.octets(w, c, depth+1)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, b.within(h, "OCTET STRING")
}
