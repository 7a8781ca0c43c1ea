//go:build cgo

package pkcs11

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/tokenrun/tokenrun/token"
)

// find returns every object matching the template.
func (t *Token) find(sh p11.SessionHandle, tmpl ...*p11.Attribute) ([]p11.ObjectHandle, error) {
	if err := t.ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	var all []p11.ObjectHandle
	for {
		hs, _, err := t.ctx.FindObjects(sh, 100)
		if err != nil {
			_ = t.ctx.FindObjectsFinal(sh)
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		all = append(all, hs...)
	}
	if err := t.ctx.FindObjectsFinal(sh); err != nil {
		return nil, err
	}
	return all, nil
}

// Certificates lists the X.509 certificates on the token. A certificate object whose value
// does not parse is left out (modules accept garbage); Delete still removes it by id.
func (t *Token) Certificates(ctx context.Context) ([]*token.Cert, error) {
	var certs []*token.Cert
	err := t.withSession(ctx, "list certificates", func(sh p11.SessionHandle) error {
		var err error
		certs, err = t.certificates(sh)
		return err
	})
	return certs, err
}

func (t *Token) certificates(sh p11.SessionHandle, extra ...*p11.Attribute) ([]*token.Cert, error) {
	tmpl := append([]*p11.Attribute{
		attr(p11.CKA_CLASS, p11.CKO_CERTIFICATE),
		attr(p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
	}, extra...)
	handles, err := t.find(sh, tmpl...)
	if err != nil {
		return nil, err
	}
	var certs []*token.Cert
	for _, h := range handles {
		a, err := t.attrs(sh, h, p11.CKA_ID, p11.CKA_LABEL, p11.CKA_VALUE)
		if isCode(err, p11.CKR_OBJECT_HANDLE_INVALID) {
			continue
		}
		if err != nil {
			return nil, err
		}
		c, err := x509.ParseCertificate(a[p11.CKA_VALUE])
		if err != nil {
			continue
		}
		certs = append(certs, &token.Cert{
			Object: token.Object{Class: token.Certificate, ID: a[p11.CKA_ID], Label: string(a[p11.CKA_LABEL])},
			DER:    a[p11.CKA_VALUE],
			X509:   c,
		})
	}
	return certs, nil
}

// StoreCertificate stores an X.509 certificate as a public token object. The DER is parsed
// first because modules store whatever they are given. Storing the same certificate under
// the same id twice is refused with ErrAlreadyExists.
func (t *Token) StoreCertificate(ctx context.Context, req token.CertificateRequest) (*token.Cert, error) {
	const op = "store certificate"
	c, err := x509.ParseCertificate(req.DER)
	if err != nil {
		return nil, &token.Error{Op: op, Err: fmt.Errorf("not a DER X.509 certificate (%v): %w", err, token.ErrInvalidInput), RetriesLeft: -1}
	}
	serial, err := asn1.Marshal(c.SerialNumber)
	if err != nil {
		return nil, &token.Error{Op: op, Err: fmt.Errorf("certificate serial: %v: %w", err, token.ErrInvalidInput), RetriesLeft: -1}
	}
	tmpl := []*p11.Attribute{
		attr(p11.CKA_CLASS, p11.CKO_CERTIFICATE),
		attr(p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
		attr(p11.CKA_TOKEN, true),
		attr(p11.CKA_PRIVATE, false),
		attr(p11.CKA_ID, req.ID),
		attr(p11.CKA_SUBJECT, c.RawSubject),
		attr(p11.CKA_ISSUER, c.RawIssuer),
		attr(p11.CKA_SERIAL_NUMBER, serial),
		attr(p11.CKA_VALUE, req.DER),
	}
	if req.Label != "" {
		tmpl = append(tmpl, attr(p11.CKA_LABEL, req.Label))
	}
	err = t.withSession(ctx, op, func(sh p11.SessionHandle) error {
		same, err := t.find(sh, attr(p11.CKA_CLASS, p11.CKO_CERTIFICATE), attr(p11.CKA_ID, req.ID), attr(p11.CKA_VALUE, req.DER))
		if err != nil {
			return err
		}
		if len(same) > 0 {
			return newErr(op, token.ErrAlreadyExists, "token %s already holds this certificate with id %x", t.name(), req.ID)
		}
		_, err = t.ctx.CreateObject(sh, tmpl)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &token.Cert{
		Object: token.Object{Class: token.Certificate, ID: append([]byte(nil), req.ID...), Label: req.Label},
		DER:    append([]byte(nil), req.DER...),
		X509:   c,
	}, nil
}

var objectClasses = map[token.ObjectClass]uint{
	token.PrivateKey:  p11.CKO_PRIVATE_KEY,
	token.PublicKey:   p11.CKO_PUBLIC_KEY,
	token.Certificate: p11.CKO_CERTIFICATE,
}

// Delete removes every object of obj.Class with obj.ID (and obj.Label when set). Private
// keys are visible, and so deletable, only after login.
func (t *Token) Delete(ctx context.Context, obj token.Object) error {
	const op = "delete"
	class, ok := objectClasses[obj.Class]
	if !ok {
		return newErr(op, token.ErrInvalidInput, "object class %q is not known: use private-key, public-key or cert", obj.Class)
	}
	if len(obj.ID) == 0 && obj.Label == "" {
		// An empty template would match every object of the class.
		return newErr(op, token.ErrInvalidInput, "give an id or a label of the %s to delete", obj.Class)
	}
	tmpl := []*p11.Attribute{attr(p11.CKA_CLASS, class), attr(p11.CKA_ID, obj.ID)}
	if obj.Label != "" {
		tmpl = append(tmpl, attr(p11.CKA_LABEL, obj.Label))
	}
	return t.withSession(ctx, op, func(sh p11.SessionHandle) error {
		handles, err := t.find(sh, tmpl...)
		if err != nil {
			return err
		}
		if len(handles) == 0 {
			return newErr(op, token.ErrNotFound, "token %s has no %s with id %x%s", t.name(), obj.Class, obj.ID, labelPart(obj.Label))
		}
		for _, h := range handles {
			if err := t.ctx.DestroyObject(sh, h); err != nil && !isCode(err, p11.CKR_OBJECT_HANDLE_INVALID) {
				return err
			}
		}
		return nil
	})
}

func labelPart(label string) string {
	if label == "" {
		return ""
	}
	return fmt.Sprintf(" and label %q", label)
}
