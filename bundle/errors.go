package bundle

import "errors"

// Errors callers branch on; every refusal wraps one of them with the details.
var (
	// ErrNoTrust: no trusted key at all, so nothing can be verified.
	ErrNoTrust = errors.New("no trusted release key: give --trust KEY.pub, or have an administrator list the bank's keys in the system trust file")
	// ErrSignature: the signature is missing, malformed or by no trusted key.
	ErrSignature = errors.New("bad bundle signature")
	// ErrContent: a file is edited, missing or extra compared with the signed manifest.
	ErrContent = errors.New("bundle content does not match its signed manifest")
	// ErrArchive: the archive itself is unsafe or malformed (paths, links, sizes, duplicates).
	ErrArchive = errors.New("unsafe or malformed bundle archive")
	// ErrDowngrade: the bundle is older than the installed one.
	ErrDowngrade = errors.New("bundle is older than the installed version")
)
