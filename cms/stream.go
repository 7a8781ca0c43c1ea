package cms

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxStreamDocument is the largest document SignStream signs. An attached signature carries
// the document in an OCTET STRING inside the EncapsulatedContentInfo, both with definite
// lengths of at most four octets (what every CMS reader here takes), so the document and
// the few dozen bytes around it must stay under 4 GiB; a detached signature carries only the
// digest, and is held to the same limit so that one cap covers both.
const MaxStreamDocument = 1<<32 - 1<<20

// bufferAbove is the size up to which SignStream of an attached signature holds the document
// and writes the same DER as Sign: a payment order is kilobytes, and DER is what the strictest
// verifiers want. Above it the document is streamed through with the outer three containers
// in indefinite-length BER (as `openssl cms -sign -stream` writes), so memory does not grow
// with the document: their lengths include the signature, whose size (ECDSA's varies by a
// few bytes) is known only after the whole document has been hashed and written.
const bufferAbove = 1 << 20

// chunk is how much of a document is read at a time.
const chunk = 64 << 10

// SignStream writes a CMS SignedData over the size bytes read from content to dst, hashing as
// it reads, so the document is never held whole (see bufferAbove for small attached ones).
// content must yield exactly size bytes: fewer or more (a file that changed while it was
// read) is an error, and whatever was written to dst must then be thrown away. Detached and
// small attached signatures are DER, byte for byte what Sign makes; large attached ones are
// BER with indefinite outer lengths, which Verify, VerifyReader and OpenSSL read.
func (s *Signer) SignStream(dst io.Writer, content io.Reader, size int64) error {
	if size < 0 || size > MaxStreamDocument {
		return fmt.Errorf("cms: document of %d bytes: this package signs up to %d", size, int64(MaxStreamDocument))
	}
	if !s.detached && size <= bufferAbove {
		data, err := readExactly(content, size)
		if err != nil {
			return err
		}
		der, err := s.Sign(data)
		if err != nil {
			return err
		}
		_, err = dst.Write(der)
		return err
	}
	h := s.hash.New()
	if s.detached {
		if err := copyExactly(h, content, size); err != nil {
			return err
		}
		sig, attrs, err := s.signSum(h.Sum(nil))
		if err != nil {
			return err
		}
		_, err = dst.Write(s.assemble(nil, attrs, sig))
		return err
	}

	w := bufio.NewWriterSize(dst, chunk)
	// ContentInfo, [0], SignedData: indefinite lengths, closed by end-of-contents octets.
	w.Write([]byte{0x30, 0x80})
	w.Write(derOIDSignedData)
	w.Write([]byte{0xa0, 0x80, 0x30, 0x80})
	w.Write(derVersion1)
	w.Write(s.digestAlgSet)
	octets := appendLength([]byte{0x04}, uint64(size))
	eContent := appendLength([]byte{0xa0}, uint64(len(octets))+uint64(size))
	w.Write(appendLength([]byte{0x30}, uint64(len(derOIDData)+len(eContent)+len(octets))+uint64(size)))
	w.Write(derOIDData)
	w.Write(eContent)
	w.Write(octets)
	if err := copyExactly(io.MultiWriter(h, w), content, size); err != nil {
		return err
	}
	sig, attrs, err := s.signSum(h.Sum(nil))
	if err != nil {
		return err
	}
	w.Write(s.certSet)
	w.Write(s.signerInfos(attrs, sig))
	w.Write([]byte{0, 0, 0, 0, 0, 0}) // end of SignedData, [0], ContentInfo
	return w.Flush()
}

// signerInfos is the SignerInfos SET with the one SignerInfo, DER.
func (s *Signer) signerInfos(attrs, sig []byte) []byte {
	si := len(derVersion1) + len(s.sid) + len(s.digestAlg) + tlvLen(len(attrs)) + len(s.sigAlg) + tlvLen(len(sig))
	out := make([]byte, 0, tlvLen(tlvLen(si)))
	out = appendHeader(out, 0x31, tlvLen(si))
	out = appendHeader(out, 0x30, si)
	out = append(out, derVersion1...)
	out = append(out, s.sid...)
	out = append(out, s.digestAlg...)
	out = appendTLV(out, 0xa0, attrs)
	out = append(out, s.sigAlg...)
	return appendTLV(out, 0x04, sig)
}

// errSizeChanged: the document did not hold the size given, most likely because it changed
// while it was being signed.
var errSizeChanged = errors.New("cms: the document's size changed while it was read")

func copyExactly(dst io.Writer, src io.Reader, size int64) error {
	buf := make([]byte, chunk)
	n, err := io.CopyBuffer(dst, io.LimitReader(src, size), buf)
	if err != nil {
		return fmt.Errorf("cms: reading the document: %w", err)
	}
	if n != size {
		return fmt.Errorf("%w: %d bytes read, %d expected", errSizeChanged, n, size)
	}
	// One byte more means the document grew.
	if m, _ := io.ReadFull(src, buf[:1]); m != 0 {
		return fmt.Errorf("%w: more than the %d bytes expected", errSizeChanged, size)
	}
	return nil
}

func readExactly(src io.Reader, size int64) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(int(size))
	if err := copyExactly(&b, src, size); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
