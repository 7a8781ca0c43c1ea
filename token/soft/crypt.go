package soft

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/tokenrun/tokenrun/token"
)

// defaultKDFIterations is the PBKDF2-HMAC-SHA256 cost of new PIN secrets: OWASP's 2023
// figure, about 135 ms on this project's machines. Each secret records its own count, so a
// change here applies to PINs set afterwards and old tokens keep working.
const defaultKDFIterations = 600_000

// kdfIterations is what new secrets get; tests lower it.
var kdfIterations = defaultKDFIterations

// maxKDFIterations bounds the count a stored secret may claim. The count comes from the
// state file, and a login runs it before it can tell a wrong PIN from a damaged file: an
// edited or damaged count (2^31) would hang every login for minutes. tokenrun writes
// defaultKDFIterations; 16 times that (about 2 s a login) leaves room for a later tokenrun
// to raise the cost, and anything above is refused as damage without being run.
const maxKDFIterations = 16 * defaultKDFIterations

const (
	masterKeyLen = 32 // AES-256
	saltLen      = 16
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand crashes the program rather than return an error
	return b
}

// derivePIN turns a PIN into a verifier (stored) and a wrapping key (never stored). One
// PBKDF2 run feeds both through HKDF, so a guess costs an attacker the full count once and
// the verifier reveals nothing about the wrapping key.
func derivePIN(pin string, salt []byte, iterations int) (verifier, kek []byte, err error) {
	dk, err := pbkdf2.Key(sha256.New, pin, salt, iterations, 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive PIN key: %w", err)
	}
	verifier, err = hkdf.Expand(sha256.New, dk, "tokenrun soft token: PIN verifier", 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive PIN key: %w", err)
	}
	kek, err = hkdf.Expand(sha256.New, dk, "tokenrun soft token: master key wrapping", 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive PIN key: %w", err)
	}
	return verifier, kek, nil
}

// newPINSecret makes the stored form of pin, with the master key sealed under it.
func newPINSecret(pin string, master, aad []byte) (*pinSecret, error) {
	sec := &pinSecret{Salt: randomBytes(saltLen), Iterations: kdfIterations}
	verifier, kek, err := derivePIN(pin, sec.Salt, sec.Iterations)
	if err != nil {
		return nil, err
	}
	sec.Verifier = verifier
	if sec.MasterKey, err = seal(kek, master, aad); err != nil {
		return nil, err
	}
	return sec, nil
}

// Sizes of a stored secret's parts, as newPINSecret makes them.
const (
	verifierLen     = 32
	gcmNonceLen     = 12
	sealedMasterLen = masterKeyLen + 16 // AES-GCM adds a 16-byte tag
)

// checkShape refuses a secret that no PIN could open as it should, before any PBKDF2 work
// or try: a count outside 1..maxKDFIterations, or parts of the wrong size.
func (sec *pinSecret) checkShape() error {
	switch {
	case sec.Iterations < 1 || sec.Iterations > maxKDFIterations:
		return fmt.Errorf("secret claims %d PBKDF2 iterations; tokenrun writes %d and accepts at most %d",
			sec.Iterations, defaultKDFIterations, maxKDFIterations)
	case len(sec.Salt) == 0:
		return errors.New("secret has no salt")
	case len(sec.Verifier) != verifierLen:
		return fmt.Errorf("verifier is %d bytes, want %d", len(sec.Verifier), verifierLen)
	case len(sec.MasterKey.Nonce) != gcmNonceLen || len(sec.MasterKey.Data) != sealedMasterLen:
		return fmt.Errorf("sealed master key is %d+%d bytes, want %d+%d",
			len(sec.MasterKey.Nonce), len(sec.MasterKey.Data), gcmNonceLen, sealedMasterLen)
	}
	return nil
}

// unlock checks pin and, when it is right, opens the master key. ok is false for a wrong
// PIN. err is damage (a damaged or edited file), never a wrong PIN: the PIN is right but
// its master key does not open, or the verifier does not match but the master key opens
// with the PIN's key, which only the right PIN's key does (AES-GCM authenticates).
func (sec *pinSecret) unlock(pin string, aad []byte) (master []byte, ok bool, err error) {
	verifier, kek, err := derivePIN(pin, sec.Salt, sec.Iterations)
	if err != nil {
		return nil, false, fmt.Errorf("cannot be checked: %w", err)
	}
	defer wipe(kek)
	match := subtle.ConstantTimeCompare(verifier, sec.Verifier) == 1
	master, uerr := unseal(kek, sec.MasterKey, aad)
	switch {
	case match && uerr != nil:
		return nil, false, masterDamage{fmt.Sprintf("is right but the master key sealed under it does not open (%v)", uerr)}
	case !match && uerr == nil:
		wipe(master)
		return nil, false, errors.New("opens the master key but does not match its verifier")
	case !match:
		return nil, false, nil
	}
	if len(master) != masterKeyLen {
		wipe(master)
		return nil, false, masterDamage{fmt.Sprintf("is right but opens a master key of %d bytes, want %d", len(master), masterKeyLen)}
	}
	return master, true, nil
}

// masterDamage is a right PIN (its verifier matches) whose master key will not open: the
// PIN is proven, the keys behind it are lost. A format, which makes a new master key, can
// still go ahead on it.
type masterDamage struct{ msg string }

func (m masterDamage) Error() string { return m.msg }

// masterAAD binds a sealed master key to its token, format and role, so that a sealed key
// copied from another token, an earlier format or the other role does not open.
func masterAAD(st *state, role token.Role) []byte {
	return []byte("tokenrun soft token master key\x00" + st.Serial + "\x00" + st.Epoch + "\x00" + role.String())
}

// keyAAD binds a sealed private key to its id and public key, so that records cannot be
// swapped or recombined in the file.
func keyAAD(id, public []byte) []byte {
	return append([]byte("tokenrun soft token private key\x00"+hex.EncodeToString(id)+"\x00"), public...)
}

func seal(key, plaintext, aad []byte) (sealed, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return sealed{}, err
	}
	nonce := randomBytes(gcm.NonceSize())
	return sealed{Nonce: nonce, Data: gcm.Seal(nil, nonce, plaintext, aad)}, nil
}

func unseal(key []byte, s sealed, aad []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != gcm.NonceSize() {
		return nil, errors.New("bad nonce length")
	}
	return gcm.Open(nil, s.Nonce, s.Data, aad)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("AES key: %w", err)
	}
	return cipher.NewGCM(block)
}

// wipe overwrites secret bytes once they are no longer needed. Best effort: Go may have
// copied them, but keys need not linger in buffers this package owns.
func wipe(b []byte) {
	clear(b)
}
