package secret

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/chacha20poly1305"
)

// MinKeyMaterial is the minimum length of a secrets key given in configuration.
const MinKeyMaterial = 32

// ErrWrongKey is returned by Box.Open when a sealed value was not sealed under this key.
var ErrWrongKey = errors.New("secret: value was sealed under a different secrets key, or is corrupt")

// Box encrypts and decrypts stored key material with XChaCha20-Poly1305 under a key derived from
// the server's secrets key. The zero value is not usable; create one with NewBox.
type Box struct {
	key [chacha20poly1305.KeySize]byte
}

// NewBox derives a Box from key material (at least MinKeyMaterial bytes: a passphrase, or a
// base64 or hex string) with HKDF-SHA256.
func NewBox(material []byte) (*Box, error) {
	if len(material) < MinKeyMaterial {
		return nil, fmt.Errorf("secret: secrets key is %d bytes, need at least %d", len(material), MinKeyMaterial)
	}
	k, err := hkdf.Key(sha256.New, material, nil, "rescind secrets key v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("secret: deriving key: %w", err)
	}
	b := &Box{}
	copy(b.key[:], k)
	return b, nil
}

// DeriveKey returns n bytes derived from the secrets key for purpose (HKDF-SHA256, purpose as
// the info): the same on every instance given the same secrets key, independent of the key that
// seals stored keys and of every other purpose's.
func (b *Box) DeriveKey(purpose string, n int) ([]byte, error) {
	if purpose == "" {
		return nil, errors.New("secret: DeriveKey needs a purpose")
	}
	k, err := hkdf.Key(sha256.New, b.key[:], nil, "rescind derived key: "+purpose, n)
	if err != nil {
		return nil, fmt.Errorf("secret: deriving key: %w", err)
	}
	return k, nil
}

// Seal encrypts plaintext, binding it to aad (for example, the key id).
func (b *Box) Seal(plaintext, aad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(b.key[:])
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secret: reading nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open decrypts a value produced by Seal with the same aad. It returns ErrWrongKey if the value
// was sealed under another key or altered.
func (b *Box) Open(sealed, aad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(b.key[:])
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrWrongKey
	}
	pt, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], aad)
	if err != nil {
		return nil, ErrWrongKey
	}
	return pt, nil
}

// LoadOrCreateKeyFile returns the secrets key material stored in path, creating the file with
// 32 random bytes (mode 0600) if it does not exist.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < MinKeyMaterial {
			return nil, fmt.Errorf("secret: secrets key file %s is truncated (%d bytes)", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("secret: reading secrets key file: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("secret: generating secrets key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("secret: creating directory for secrets key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("secret: creating secrets key file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("secret: writing secrets key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("secret: syncing secrets key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("secret: closing secrets key file: %w", err)
	}
	return b, nil
}
