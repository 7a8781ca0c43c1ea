// Package ca owns the certificate-authority side of enrollment, with no Lua in it: opening the
// bank's initial-key containers (LoadPKCS12), making a PKCS#10 request signed by a token key
// (CSR), talking EST (RFC 7030) to the CA (Client: CACerts, Enroll, Reenroll) and checking an
// issued certificate before it is stored on the token (CheckIssued).
//
// Token keys reach this package only as crypto.Signer; it never imports the token package.
// Failures callers branch on are sentinels for errors.Is (ErrWrongPassword, ErrPending,
// ErrRefused, ErrWrongKey, ...), wrapped in errors that say what happened and what to do.
// Passwords never appear in any error.
package ca
