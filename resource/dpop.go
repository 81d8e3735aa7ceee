package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/rescind/rescind/client"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/token"
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
	// ErrNoBaseURL: a DPoP-bound token came to a middleware without Config.BaseURL, which
	// therefore cannot tell which URL the proof must name (the Host header is the sender's to
	// choose), and accepts no bound token.
	ErrNoBaseURL = errors.New("this resource server accepts no DPoP-bound token: its BaseURL is not configured")
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
	c, err := m.verifyToken(r.Context(), text)
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
	if m.cfg.BaseURL == "" {
		m.noBaseURL.Do(func() {
			m.cfg.Logger.Warn("a DPoP-bound token was refused: set the resource middleware's BaseURL to the URL clients address this server by, to accept DPoP-bound tokens")
		})
		return nil, &authError{scheme: scheme, code: "invalid_token", err: ErrNoBaseURL}
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

// requestURL is r's URL as the client addressed it, for the proof's htu (RFC 9449 §4.3): BaseURL
// and the path. Never the request's Host header: the sender chooses it, so a proof the client
// made for another origin (a server it was redirected to, another API it calls) would pass with
// a Host naming that origin.
func (m *Middleware) requestURL(r *http.Request) string {
	return m.cfg.BaseURL + r.URL.EscapedPath()
}

// checkBaseURL returns Config.BaseURL without its trailing slash, or an error if it is not an
// absolute http or https URL without user, query or fragment.
func checkBaseURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("resource: BaseURL %q must be an absolute http or https URL, such as https://api.example", s)
	}
	return strings.TrimSuffix(s, "/"), nil
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
func (c *jwtClaims) jkt() string { return c.boundTo }

// errConfirmation: the token's cnf binds it by a method other than DPoP's jkt (mTLS's
// x5t#S256, RFC 8705; a jwk, RFC 7800), or is malformed. The middleware can check no other
// method, so such a token is refused, never taken for a bearer token.
var errConfirmation = errors.New("the token is bound (cnf) by a confirmation method other than a DPoP key (jkt)")

// confirmation returns the DPoP key thumbprint a token's claims, or an introspection answer,
// bind it to (RFC 7800 §3.1, RFC 9449 §6): "" if there is no cnf member (or it is null), the
// thumbprint if cnf is exactly {"jkt": "<non-empty string>"}, and errConfirmation for anything
// else: another or a further confirmation method, which would be ignored otherwise, or a member
// named cnf or jkt in another case, which encoding/json would match.
func confirmation(object []byte) (string, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(object, &members); err != nil {
		return "", errClaims
	}
	for k := range members {
		if k != "cnf" && strings.EqualFold(k, "cnf") {
			return "", errConfirmation
		}
	}
	raw, ok := members["cnf"]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var cnf map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cnf); err != nil || len(cnf) != 1 {
		return "", errConfirmation
	}
	var jkt string
	if err := json.Unmarshal(cnf["jkt"], &jkt); err != nil || jkt == "" {
		return "", errConfirmation
	}
	return jkt, nil
}

// errNotAccessToken: the token is a refresh token or code, or introspection says it is not an
// access token (token_type, or Hydra's token_use): it may never stand for an access token, least
// of all an unbound refresh token of a client whose access tokens are DPoP-bound.
var errNotAccessToken = errors.New("the token is not an access token")

// notAccessToken reports whether text is a Rescind refresh token or authorization code, which
// the middleware refuses without asking.
func notAccessToken(text string) bool {
	return strings.HasPrefix(text, token.RefreshPrefix) || strings.HasPrefix(text, token.CodePrefix)
}

// introspectedAccessToken checks that an active introspection answer is about an access token:
// its token_type, if present, is Bearer or DPoP (RFC 6749 §5.1, RFC 9449 §6.2: case does not
// matter), and its token_use (Hydra), if present, is access_token.
func introspectedAccessToken(in *client.Introspection) error {
	if in.TokenType != "" && !strings.EqualFold(in.TokenType, "Bearer") && !strings.EqualFold(in.TokenType, "DPoP") {
		return errNotAccessToken
	}
	if raw, ok := in.Extra["token_use"]; ok {
		var use string
		if json.Unmarshal(raw, &use) != nil || use != "access_token" {
			return errNotAccessToken
		}
	}
	return nil
}
