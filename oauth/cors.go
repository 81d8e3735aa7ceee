package oauth

import (
	"net/http"
	"strconv"
	"strings"
)

// Cross-origin resource sharing (the WHATWG Fetch standard's CORS protocol) for the endpoints a
// browser app calls itself: token, revocation, registration, metadata, JWKS and status lists.
// Never credentials mode: Access-Control-Allow-Credentials is never sent, so a browser sends no
// cookie with these requests and lets no page read an answer to one that carried any. Pages, the
// authorization endpoint (a browser navigates there; it is not fetched) and introspection (for
// resource servers, never browsers) send no CORS headers at all, and refuse OPTIONS.

// corsPolicy says which origins may read an endpoint's answers.
type corsPolicy int

const (
	// corsAnyOrigin lets every origin read the answers ("*"): documents that involve no
	// cookie or secret (metadata, JWKS, status lists), and registration, where the caller is a
	// client not yet known and brings whatever token it uses.
	corsAnyOrigin corsPolicy = iota + 1
	// corsClientOrigins lets the origins of registered public clients read the answers (the
	// origins of their redirect URIs; clientreg.Snapshot): token and revocation.
	corsClientOrigins
)

// corsAllowHeaders are the request headers a cross-origin request may carry: client and DPoP
// authentication, the body's type, and the header MCP clients send with discovery.
const corsAllowHeaders = "Authorization, Content-Type, DPoP, Accept, MCP-Protocol-Version"

// corsExposeHeaders are the answer headers a page may read besides the safelisted ones.
const corsExposeHeaders = "DPoP-Nonce, WWW-Authenticate, Retry-After"

// corsMaxAge is how long a browser may reuse a preflight's answer, in seconds.
const corsMaxAge = 600

// allowedOrigin returns the Access-Control-Allow-Origin value for a request from origin under
// policy, or "" if that origin may not read the answer.
func (s *Server) allowedOrigin(r *http.Request, policy corsPolicy, origin string) string {
	switch policy {
	case corsAnyOrigin:
		return "*"
	case corsClientOrigins:
		snap, err := s.clients.Snapshot(r.Context())
		if err != nil {
			s.log.WarnContext(r.Context(), "reading the clients' origins", "err", err)
			return ""
		}
		if snap.PublicOrigin(origin) {
			return origin
		}
	}
	return ""
}

// withCORS sets the CORS answer headers on every answer of h (errors included, so a browser app
// can read why it was refused) to a request that carries an Origin.
func (s *Server) withCORS(policy corsPolicy, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		if policy == corsClientOrigins {
			hd.Add("Vary", "Origin")
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			if allow := s.allowedOrigin(r, policy, origin); allow != "" {
				hd.Set("Access-Control-Allow-Origin", allow)
				hd.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			}
		}
		h(w, r)
	}
}

// preflight answers OPTIONS on an endpoint with CORS: 204 with Allow (RFC 9110 §9.3.7) and, for
// a CORS preflight from an origin that may read the endpoint's answers, the methods and headers
// it may use. A preflight from another origin gets no CORS headers: the browser then refuses
// the request it was asking about.
func (s *Server) preflight(policy corsPolicy, methods string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Allow", methods+", OPTIONS")
		if policy == corsClientOrigins {
			hd.Add("Vary", "Origin")
		}
		origin := r.Header.Get("Origin")
		method := r.Header.Get("Access-Control-Request-Method")
		if origin != "" && method != "" {
			if allow := s.allowedOrigin(r, policy, origin); allow != "" && strings.Contains(", "+methods+", ", ", "+method+", ") {
				hd.Set("Access-Control-Allow-Origin", allow)
				hd.Set("Access-Control-Allow-Methods", methods)
				hd.Set("Access-Control-Allow-Headers", corsAllowHeaders)
				hd.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
			}
		}
		hd.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	}
}
