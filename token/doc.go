// Package token implements Rescind's token formats: sealed opaque access tokens, JWT access
// tokens (RFC 9068) with their signing keys and JWKS (RFC 7517), Token Status Lists
// (draft-ietf-oauth-status-list), and the stored credentials (refresh tokens, authorization
// codes).
//
// An opaque access token is self-contained and never stored: the server seals its claims with
// XChaCha20-Poly1305 (random 192-bit nonces, safe for billions of tokens per key) under a key
// of its Keyring identified inside the token, so checking one needs no database I/O. Its text
// form is
//
//	rsc_at_ BASE64URL( version | key id | nonce | ciphertext+tag | crc32 )
//
// The prefix lets secret scanners recognise a leaked token; the CRC-32 lets them (and the server)
// reject a mistyped or truncated one before any decryption. Claims cover what introspection
// (RFC 7662 §2.2) needs: token id, grant, client, subject, scope, issued-at and expiry, and, from
// format version 2, the audience (the RFC 8707 resources); from version 3, the thumbprint of the
// DPoP key a bound token is bound to (RFC 9449 §6); older versions still open.
//
// A JWT access token (typ at+jwt, RFC 9068 §2) is signed by the Signer's key in force, ES256 or
// EdDSA, and carries a status claim naming its entry in a status list (Token Status List §6.1),
// and, bound to a DPoP key, cnf.jkt (RFC 9449 §6.1).
// Verification pins the algorithm to the key's, so "none" and HMAC-with-the-public-key are
// impossible. A key is published in the JWKS before it signs (JWKSMaxAge, the JWKS cache
// lifetime, ahead) and after it stops, until the tokens it signed have expired.
//
// The Signer holds chains of keys (SigningKey.Chain), each with its own key in force: chain ""
// signs access tokens and status lists (Sign); SignWith(alg, claims, typ) signs ID tokens and
// security event tokens with AlgES256, AlgEdDSA or AlgRS256 (RSA, RSAKeyBits), with chain ""'s
// key if it is of alg, else with chain alg's. The JWKS lists every live key of every chain, each
// with its alg and use "sig".
//
// A status list (typ statuslist+jwt) holds one bit per token, DEFLATE-compressed in its lst
// member (§4.1): EncodeStatusList, DecodeStatusList, StatusAt and SetStatus.
//
// Refresh tokens (rsc_rt_) and authorization codes (rsc_ac_) are 256 random bits (NewStored);
// only their SHA-256 (Hash) is stored.
package token
