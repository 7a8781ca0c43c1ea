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

// kdfIterations is the PBKDF2-HMAC-SHA256 cost of new PIN secrets: OWASP's 2023 figure,
// about 135 ms on this project's machines. Each secret records its own count, so a change
// here applies to PINs set afterwards and old tokens keep working. Tests lower it.
var kdfIterations = 600_000

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

// unlock checks pin and, when it is right, opens the master key. ok is false for a wrong
// PIN; err is for a right PIN whose master key does not open (a damaged or edited file).
func (sec *pinSecret) unlock(pin string, aad []byte) (master []byte, ok bool, err error) {
	verifier, kek, err := derivePIN(pin, sec.Salt, sec.Iterations)
	if err != nil {
		return nil, false, err
	}
	if subtle.ConstantTimeCompare(verifier, sec.Verifier) != 1 {
		return nil, false, nil
	}
	master, err = unseal(kek, sec.MasterKey, aad)
	if err != nil {
		return nil, true, fmt.Errorf("the master key does not open with the right PIN: %w", err)
	}
	if len(master) != masterKeyLen {
		return nil, true, errors.New("the master key has the wrong length")
	}
	return master, true, nil
}

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
