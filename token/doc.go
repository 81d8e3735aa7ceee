// Package token implements Rescind's access token formats.
//
// An opaque access token is self-contained and never stored: the server seals its claims with
// XChaCha20-Poly1305 (random 192-bit nonces, safe for billions of tokens per key) under a key
// identified inside the token, so checking one needs no database I/O. Its text form is
//
//	rsc_at_ BASE64URL( version | key id | nonce | ciphertext+tag | crc32 )
//
// The prefix lets secret scanners recognise a leaked token; the CRC-32 lets them (and the server)
// reject a mistyped or truncated one before any decryption. Claims cover what introspection
// (RFC 7662 §2.2) needs: token id, grant, client, subject, scope, issued-at and expiry, and,
// for a DPoP-bound token (RFC 9449 §6), the thumbprint of the key it is bound to.
//
// A JWT access token (RFC 9068) carries the same, the binding as cnf.jkt (RFC 9449 §6.1).
package token
