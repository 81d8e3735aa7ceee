// Package dpop implements Demonstrating Proof of Possession (DPoP, RFC 9449): creating proofs
// (a client's side) and checking them (an authorization server's token endpoint and a resource
// server's middleware).
//
// A DPoP proof is a JWT of type "dpop+jwt" signed with the client's private key and carrying the
// public key in its "jwk" header (§4.2). A Verifier checks every rule of §4.3: one well-formed
// JWS, an asymmetric algorithm from the allowed list, a public key only, the signature, htm and
// htu matching the request, iat within the window, a jti not seen before within that window (a
// ReplayCache), the server's nonce when one is required (§8, §9), and, at a resource server, ath
// (the hash of the access token) and the key's thumbprint matching the token's cnf.jkt (§7.1).
//
// Nonces are stateless and shared: a Nonces value derives them from a key and the current time
// period, so every instance that holds the same key issues and accepts the same nonces.
package dpop
