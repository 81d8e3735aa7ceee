package token

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// Status values (Token Status List §7.1).
const (
	StatusValid   = 0x00
	StatusInvalid = 0x01
)

// MaxStatusListBytes bounds a decoded status list.
const MaxStatusListBytes = 16 << 20

// EncodeStatusList compresses a status list byte array with DEFLATE in the ZLIB format and
// encodes it with base64url without padding: the lst member (Token Status List §4.1).
func EncodeStatusList(raw []byte) (string, error) {
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := w.Write(raw); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(buf.Bytes()), nil
}

// DecodeStatusList reverses EncodeStatusList, refusing lists larger than MaxStatusListBytes.
func DecodeStatusList(lst string) ([]byte, error) {
	z, err := base64.RawURLEncoding.DecodeString(lst)
	if err != nil {
		return nil, fmt.Errorf("token: status list: %w", err)
	}
	r, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("token: status list: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(r, MaxStatusListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("token: status list: %w", err)
	}
	if len(raw) > MaxStatusListBytes {
		return nil, errors.New("token: status list too large")
	}
	return raw, nil
}

// StatusAt returns the status of entry idx of a list of bits-sized statuses: index 0 is in the
// least significant bits of the first byte (§4.1). ok is false if idx is outside the list.
func StatusAt(raw []byte, bits int, idx int64) (status byte, ok bool) {
	if bits != 1 && bits != 2 && bits != 4 && bits != 8 || idx < 0 {
		return 0, false
	}
	per := int64(8 / bits)
	if idx/per >= int64(len(raw)) {
		return 0, false
	}
	shift := uint((idx % per) * int64(bits))
	return (raw[idx/per] >> shift) & byte(1<<bits-1), true
}

// SetStatus sets entry idx of a 1-bit list.
func SetStatus(raw []byte, idx int64) {
	raw[idx/8] |= 1 << uint(idx%8)
}

// StatusListClaims are the claims of a Status List Token (§5.1).
type StatusListClaims struct {
	Subject    string         `json:"sub"`
	IssuedAt   int64          `json:"iat"`
	Expiry     int64          `json:"exp,omitempty"`
	TTL        int64          `json:"ttl,omitempty"`
	StatusList StatusListBody `json:"status_list"`
}

// StatusListBody is the status_list claim.
type StatusListBody struct {
	Bits int    `json:"bits"`
	Lst  string `json:"lst"`
}
