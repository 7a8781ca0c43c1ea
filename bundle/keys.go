// Package bundle owns signed script bundles: the archive format (a scripts tree whose
// manifest.yaml lists every file's SHA-256, signed with Ed25519), the release keys and the
// trust in them, and the installed copies under TOKENRUN_HOME with their version pointers.
// It never runs Lua: what it hands out is a verified scripts.Set.
package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// The key file formats: one line, a type word, the base64 key and a free comment. The type
// word keeps a private key from being passed where a public one is expected, and the other
// way round.
const (
	publicKeyType  = "tokenrun-ed25519-public"
	privateKeyType = "tokenrun-ed25519-private"
)

// PublicKey is a release key that may sign bundles.
type PublicKey struct {
	Key     ed25519.PublicKey
	Comment string
}

// ID is a short fingerprint of the key, shown in lists and recorded at install.
func (k PublicKey) ID() string {
	sum := sha256.Sum256(k.Key)
	return hex.EncodeToString(sum[:8])
}

// String is the key in its file format.
func (k PublicKey) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", publicKeyType, base64.StdEncoding.EncodeToString(k.Key), k.Comment)) + "\n"
}

// PrivateKey is a release signing key.
type PrivateKey struct {
	Key     ed25519.PrivateKey
	Comment string
}

// Public is the matching public key.
func (k PrivateKey) Public() PublicKey {
	return PublicKey{Key: k.Key.Public().(ed25519.PublicKey), Comment: k.Comment}
}

// String is the key in its file format; only the seed is stored.
func (k PrivateKey) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", privateKeyType, base64.StdEncoding.EncodeToString(k.Key.Seed()), k.Comment)) + "\n"
}

// GenerateKey makes a new release key pair.
func GenerateKey(comment string) (PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("generate key: %w", err)
	}
	return PrivateKey{Key: priv, Comment: strings.Join(strings.Fields(comment), " ")}, nil
}

// ParsePrivateKey reads a private key file.
func ParsePrivateKey(data []byte) (PrivateKey, error) {
	raw, comment, err := parseKeyLine(string(data), privateKeyType, ed25519.SeedSize)
	if err != nil {
		return PrivateKey{}, err
	}
	return PrivateKey{Key: ed25519.NewKeyFromSeed(raw), Comment: comment}, nil
}

// ParsePublicKeys reads one or more public keys, one a line; blank lines and # comments are
// skipped. A trust file has this format too.
func ParsePublicKeys(data []byte) ([]PublicKey, error) {
	var keys []PublicKey
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, comment, err := parseKeyLine(line, publicKeyType, ed25519.PublicKeySize)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		keys = append(keys, PublicKey{Key: ed25519.PublicKey(raw), Comment: comment})
	}
	if len(keys) == 0 {
		return nil, errors.New("no public key found (expected a line \"" + publicKeyType + " BASE64 COMMENT\")")
	}
	return keys, nil
}

func parseKeyLine(line, typ string, size int) ([]byte, string, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return nil, "", fmt.Errorf("not a %s key: expected \"%s BASE64 COMMENT\"", typ, typ)
	}
	if f[0] != typ {
		if f[0] == privateKeyType || f[0] == publicKeyType {
			return nil, "", fmt.Errorf("this is a %s key where a %s key is needed", f[0], typ)
		}
		return nil, "", fmt.Errorf("not a %s key: it starts with %q", typ, f[0])
	}
	raw, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(raw) != size {
		return nil, "", fmt.Errorf("%s key is damaged: expected %d base64-encoded bytes", typ, size)
	}
	return raw, strings.Join(f[2:], " "), nil
}

// Keyring is a set of trusted public keys.
type Keyring []PublicKey

// Add adds keys not already present.
func (r *Keyring) Add(keys ...PublicKey) {
	for _, k := range keys {
		if _, ok := r.find(k.Key); !ok {
			*r = append(*r, k)
		}
	}
}

func (r Keyring) find(pub ed25519.PublicKey) (PublicKey, bool) {
	for _, k := range r {
		if bytes.Equal(k.Key, pub) {
			return k, true
		}
	}
	return PublicKey{}, false
}

// verify returns the key that signed msg, or an error saying that none of the trusted ones did.
func (r Keyring) verify(msg, sig []byte) (PublicKey, error) {
	if len(r) == 0 {
		return PublicKey{}, ErrNoTrust
	}
	if len(sig) != ed25519.SignatureSize {
		return PublicKey{}, fmt.Errorf("%w: manifest.sig is %d bytes, an Ed25519 signature is %d", ErrSignature, len(sig), ed25519.SignatureSize)
	}
	for _, k := range r {
		if ed25519.Verify(k.Key, msg, sig) {
			return k, nil
		}
	}
	return PublicKey{}, fmt.Errorf("%w: manifest.yaml is not signed by any of the %d trusted keys (%s): it was changed after signing, or signed with a key you do not trust", ErrSignature, len(r), r.ids())
}

func (r Keyring) ids() string {
	ids := make([]string, len(r))
	for i, k := range r {
		ids[i] = k.ID()
	}
	return strings.Join(ids, ", ")
}
