package resource

import (
	"errors"
	"net/http"
	"strings"

	"github.com/rescind/rescind/dpop"
)

// Why VerifyRequest refuses a request. They wrap what Verify said of the token, if it said
// anything, so errors.Is finds both.
var (
	// ErrNoToken: the request has no Authorization header with a Bearer or DPoP token.
	ErrNoToken = errors.New("no access token (Authorization: Bearer or DPoP)")
	// ErrBoundAsBearer: a DPoP-bound token came as a Bearer token, without proof of its key
	// (RFC 9449 §7.1): a copied token, as far as anyone can tell.
	ErrBoundAsBearer = errors.New("the token is bound to a DPoP key: present it with the DPoP scheme and a proof")
	// ErrNotBound: a token that is not DPoP-bound came with the DPoP scheme.
	ErrNotBound = errors.New("the token is not bound to a DPoP key: present it as a Bearer token")
)

// algs is the algs parameter of the DPoP challenge (RFC 9449 §7.1).
var algs = strings.Join(dpop.SupportedAlgorithms, " ")

// authError is a refusal with what the challenge (RFC 6750 §3, RFC 9449 §7.1) says.
type authError struct {
	scheme string // "Bearer" or "DPoP": the scheme the request used, or "" with no token
	code   string // the error parameter: invalid_token, invalid_dpop_proof, use_dpop_nonce
	err    error
}

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// newDPoPVerifier returns the verifier of the proofs that come with DPoP-bound tokens.
func newDPoPVerifier(cfg Config) *dpop.Verifier {
	replay := cfg.DPoPReplay
	if replay == nil {
		replay = &dpop.MemoryCache{Now: cfg.Now}
	}
	return &dpop.Verifier{Replay: replay, Nonces: cfg.DPoPNonces, Now: cfg.Now}
}

// VerifyRequest checks the access token of r as RFC 6750 §2.1 and RFC 9449 §7 say: a token that
// is not DPoP-bound only as "Authorization: Bearer", a bound one only as "Authorization: DPoP"
// with a DPoP header whose proof is made with the token's key, for this request's method and URL,
// and carries the token's hash (ath) and, with DPoPNonces, a current nonce. It returns the
// token's claims (JKT is set for a bound token).
func (m *Middleware) VerifyRequest(r *http.Request) (*Claims, error) {
	scheme, text, ok := authorization(r)
	if !ok {
		return nil, &authError{err: ErrNoToken}
	}
	c, err := m.Verify(r.Context(), text)
	if err != nil {
		return nil, &authError{scheme: scheme, code: "invalid_token", err: err}
	}
	if scheme == "Bearer" {
		if c.JKT != "" {
			return nil, &authError{scheme: scheme, code: "invalid_token", err: ErrBoundAsBearer}
		}
		return c, nil
	}
	if c.JKT == "" {
		return nil, &authError{scheme: scheme, code: "invalid_token", err: ErrNotBound}
	}
	_, err = m.dpop.Verify(r.Context(), r.Header.Values("DPoP"), dpop.Request{Method: r.Method, URL: m.requestURL(r),
		AccessToken: text, JKT: c.JKT, RequireNonce: m.cfg.DPoPNonces != nil})
	var de *dpop.Error
	switch {
	case errors.As(err, &de):
		return nil, &authError{scheme: scheme, code: de.Code, err: err}
	case err != nil:
		// The replay cache could not tell whether the proof is fresh: refuse (fail closed).
		m.cfg.Logger.Warn("checking a DPoP proof", "err", err)
		return nil, &authError{scheme: scheme, code: dpop.CodeInvalidProof, err: err}
	}
	return c, nil
}

// authorization returns the scheme ("Bearer" or "DPoP", whatever the case sent) and the token
// of r's Authorization header.
func authorization(r *http.Request) (scheme, tok string, ok bool) {
	h := r.Header.Get("Authorization")
	s, t, found := strings.Cut(h, " ")
	t = strings.TrimSpace(t)
	switch {
	case !found || t == "":
		return "", "", false
	case strings.EqualFold(s, "Bearer"):
		return "Bearer", t, true
	case strings.EqualFold(s, "DPoP"):
		return "DPoP", t, true
	}
	return "", "", false
}

// requestURL is r's URL as the client addressed it, for the proof's htu: BaseURL and the path,
// or, without BaseURL, the request's own scheme and Host.
func (m *Middleware) requestURL(r *http.Request) string {
	if m.cfg.BaseURL != "" {
		return strings.TrimSuffix(m.cfg.BaseURL, "/") + r.URL.EscapedPath()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// refuse answers a refused request: 401 with the challenges of RFC 6750 §3 and RFC 9449 §7.1.
// An error in the DPoP scheme gets the DPoP challenge alone (with the nonce to use, for
// use_dpop_nonce); anything else gets the Bearer challenge first, then the DPoP one, which tells
// the client the algorithms it may use.
func (m *Middleware) refuse(w http.ResponseWriter, err error) {
	var ae *authError
	if !errors.As(err, &ae) {
		ae = &authError{scheme: "Bearer", code: "invalid_token", err: err}
	}
	h := w.Header()
	// Each challenge names the protected resource metadata (RFC 9728 §5.1, metadata.go).
	dpopChallenge := m.challenge("DPoP", "", "", false, `algs="`+algs+`"`)
	if ae.code != "" {
		dpopChallenge = m.challenge("DPoP", ae.code, ae.err.Error(), false, `algs="`+algs+`"`)
	}
	switch ae.scheme {
	case "DPoP":
		h.Set("WWW-Authenticate", dpopChallenge)
		if ae.code == dpop.CodeUseNonce {
			h.Set("DPoP-Nonce", m.cfg.DPoPNonces.Current(m.cfg.Now()))
		}
	case "Bearer":
		h.Set("WWW-Authenticate", m.challenge("Bearer", "invalid_token", ae.err.Error(), false))
		h.Add("WWW-Authenticate", `DPoP algs="`+algs+`"`)
	default: // no token: no error code (RFC 6750 §3.1), but the scope needed
		h.Set("WWW-Authenticate", m.challenge("Bearer", "", "", true))
		h.Add("WWW-Authenticate", `DPoP algs="`+algs+`"`)
	}
	http.Error(w, "invalid or missing access token", http.StatusUnauthorized)
}

// scheme is the authentication scheme a verified token came in: DPoP for a bound one.
func scheme(c *Claims) string {
	if c.JKT != "" {
		return "DPoP"
	}
	return "Bearer"
}

// withNonce adds the current DPoP nonce to a response, when the middleware demands nonces, so a
// client always holds a fresh one (RFC 9449 §9).
func (m *Middleware) withNonce(w http.ResponseWriter, c *Claims) {
	if m.cfg.DPoPNonces != nil && c.JKT != "" {
		w.Header().Set("DPoP-Nonce", m.cfg.DPoPNonces.Current(m.cfg.Now()))
	}
}

// jkt returns the thumbprint of the key the JWT is bound to, or "".
func (c *jwtClaims) jkt() string {
	if c.Cnf == nil {
		return ""
	}
	return c.Cnf.JKT
}
