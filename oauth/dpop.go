package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/token"
)

// When the token endpoint demands a server nonce in DPoP proofs (RFC 9449 §8).
const (
	// DPoPNonceOff never demands one.
	DPoPNonceOff = "off"
	// DPoPNonceAuto demands one from public clients, which do not authenticate (so the nonce is
	// what keeps a proof made in advance from being used later, §11.2), and from clients
	// registered with RequireDPoP, which asked for DPoP's full protection.
	DPoPNonceAuto = "auto"
	// DPoPNonceAlways demands one from every client that sends a proof.
	DPoPNonceAlways = "always"
)

// newDPoP returns the verifier of token requests' proofs: cfg's, or one enough for a single
// instance (a replay cache in memory, nonces under a random key).
func newDPoP(cfg Config) (*dpop.Verifier, error) {
	switch cfg.DPoPNonce {
	case "", DPoPNonceOff, DPoPNonceAuto, DPoPNonceAlways:
	default:
		return nil, fmt.Errorf("oauth: DPoPNonce %q is not off, auto or always", cfg.DPoPNonce)
	}
	if v := cfg.DPoP; v != nil {
		if v.Nonces == nil && cfg.DPoPNonce != DPoPNonceOff {
			return nil, errors.New("oauth: the DPoP verifier has no Nonces, but DPoPNonce is not off")
		}
		return v, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("oauth: DPoP nonce key: %w", err)
	}
	nonces, err := dpop.NewNonces(key, 0)
	if err != nil {
		return nil, err
	}
	return &dpop.Verifier{Replay: &dpop.MemoryCache{Now: cfg.Now}, Nonces: nonces, Now: cfg.Now}, nil
}

// StoreReplay is a dpop.ReplayCache kept in the store (rescind.Store.MarkUsed): shared by every
// instance that uses the store, so a proof used at one is refused at all (RFC 9449 §11.1), and
// kept across restarts.
type StoreReplay struct {
	// Store records the used proofs. Required.
	Store rescind.Store
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Add implements dpop.ReplayCache.
func (r *StoreReplay) Add(ctx context.Context, key [32]byte, expires time.Time) (bool, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return r.Store.MarkUsed(ctx, key, expires, now())
}

// nonceRequired reports whether proofs of client's token requests must carry a server nonce.
func (s *Server) nonceRequired(client rescind.Client) bool {
	switch s.dpopNonce {
	case DPoPNonceAlways:
		return true
	case DPoPNonceOff:
		return false
	}
	return client.Public || client.RequireDPoP
}

// tokenProof checks the DPoP proof of a token request (RFC 9449 §5, every rule of §4.3) and
// returns it, or nil if the request has none. A client registered with RequireDPoP must send
// one. A proof that fails is invalid_dpop_proof, or use_dpop_nonce (400 with a DPoP-Nonce
// header) when it lacks the nonce the server demands (§8). When a nonce is demanded, every
// answer carries the current one, so a client always holds a fresh nonce for its next request.
func (s *Server) tokenProof(w http.ResponseWriter, r *http.Request, client rescind.Client) (*dpop.Proof, *Error) {
	header := r.Header.Values("DPoP")
	if len(header) == 0 {
		if client.RequireDPoP {
			return nil, errorf(dpop.CodeInvalidProof, http.StatusBadRequest, "this client must send a DPoP proof (RFC 9449) with every token request")
		}
		return nil, nil
	}
	requireNonce := s.nonceRequired(client)
	if requireNonce {
		w.Header().Set("DPoP-Nonce", s.dpop.Nonces.Current(s.now()))
	}
	p, err := s.dpop.Verify(r.Context(), header, dpop.Request{Method: http.MethodPost, URL: s.tokenURL, RequireNonce: requireNonce})
	var de *dpop.Error
	switch {
	case err == nil:
		return p, nil
	case errors.As(err, &de):
		return nil, errorf(de.Code, http.StatusBadRequest, de.Description)
	default:
		// The replay cache could not tell whether the proof is fresh: refuse it (fail closed).
		s.log.ErrorContext(r.Context(), "checking a DPoP proof", "err", err)
		return nil, &Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Description: "the DPoP proof cannot be checked now; retry with a new proof"}
	}
}

// jktOf returns the thumbprint a proof binds tokens to, or "" without a proof.
func jktOf(p *dpop.Proof) string {
	if p == nil {
		return ""
	}
	return p.JKT
}

// refreshBinding is the key a new refresh token of client is bound to (RFC 9449 §5): the key of
// the token it replaces, if that one was bound (a binding is never dropped); else, for a public
// client, jkt, the key of the request's proof. A confidential client's refresh tokens are not
// bound: they are sender-constrained by its authentication already.
func refreshBinding(client rescind.Client, previous, jkt string) string {
	if previous != "" {
		return previous
	}
	if client.Public {
		return jkt
	}
	return ""
}

// errRefreshKey answers the use of a bound refresh token without a proof made with its key.
var errRefreshKey = errorf(ErrInvalidGrant, http.StatusBadRequest,
	"the refresh token is bound to a DPoP key: send a DPoP proof made with that key (RFC 9449 §5)")

// errCodeKey answers the redemption of a code bound to a key (dpop_jkt of the authorization
// request, RFC 9449 §10) without a proof made with that key.
var errCodeKey = errorf(ErrInvalidGrant, http.StatusBadRequest,
	"the authorization code is bound to a DPoP key (dpop_jkt): send a DPoP proof made with that key (RFC 9449 §10)")

// validJKT reports whether s has the form of a JWK SHA-256 thumbprint (RFC 7638): 32 bytes in
// base64url without padding.
func validJKT(s string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// confirmation is the cnf claim of a token bound to jkt, or nil for a bearer token.
func confirmation(jkt string) *token.Confirmation {
	if jkt == "" {
		return nil
	}
	return &token.Confirmation{JKT: jkt}
}

// tokenType is the token_type of an access token bound to jkt (RFC 9449 §5, §6.2).
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return "Bearer"
}
