package cms_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"log"

	"github.com/tokenrun/tokenrun/cms"
)

// Signing a day's payment orders after one login: the key stays on the token, the Signer is
// prepared once, and a failure says which order it stopped at.
func ExampleSigner_SignBatch() {
	var (
		key    crypto.Signer     // from the token, after login
		cert   *x509.Certificate // the user's certificate, from the token
		inter  *x509.Certificate // the bank's issuing CA
		orders [][]byte
	)
	s, err := cms.NewSigner(key, cert, cms.SignOptions{Detached: true, Chain: []*x509.Certificate{inter}})
	if err != nil {
		log.Fatal(err) // cms.ErrKeyMismatch: the certificate is not this key's
	}
	sigs, err := s.SignBatch(context.Background(), orders)
	if err != nil {
		log.Printf("%d orders signed before: %v", len(sigs), err)
	}
}

func ExampleVerify() {
	var (
		sig, order []byte
		bankRoots  *x509.CertPool
	)
	v, err := cms.Verify(sig, order, cms.VerifyOptions{Roots: bankRoots})
	if err != nil {
		log.Fatal(err) // not a CMS signature at all
	}
	if !v.OK() {
		for _, p := range v.Problems {
			fmt.Println(p)
		}
		return
	}
	fmt.Println("signed by", v.Subject, "serial", v.Serial, "at", v.SigningTime)
}
