package oauth

import (
	"net/http"
	"slices"
	"strings"
)

// Handler returns the HTTP handler of the whole public surface. This is the one route table:
// the protocol endpoints of this package and the pages of package web (Config.Pages). A known
// path asked with another method gets a 405 with Allow; an unknown path a 404.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	allow := map[string][]string{} // path -> methods routed
	pagePaths := map[string]bool{}
	corsMethods := map[string][]string{} // path -> methods of a route with CORS
	corsPolicies := map[string]corsPolicy{}
	route := func(pattern, endpoint string, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		allow[path] = append(allow[path], method)
		mux.Handle(pattern, s.metrics.Instrument(endpoint, h))
	}
	// page is a route whose answers are HTML pages (or redirects of the browser).
	page := func(pattern, endpoint string, h http.HandlerFunc) {
		_, path, _ := strings.Cut(pattern, " ")
		pagePaths[path] = true
		route(pattern, endpoint, pageHeaders(h))
	}

	// cors is a route a browser app may call from its own origin (cors.go): its answers carry
	// CORS headers for the origins policy allows, and OPTIONS answers preflights.
	cors := func(policy corsPolicy, pattern, endpoint string, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		route(pattern, endpoint, s.withCORS(policy, h))
		corsMethods[path] = append(corsMethods[path], method)
		corsPolicies[path] = policy
	}

	cors(corsClientOrigins, "POST /oauth2/token", "token", s.handleToken)                            // RFC 6749 §3.2 (token.go)
	cors(corsClientOrigins, "POST /oauth2/revoke", "revoke", s.handleRevoke)                         // RFC 7009 (revoke.go)
	route("POST /oauth2/introspect", "introspect", s.handleIntrospect)                               // RFC 7662 (introspect.go)
	cors(corsAnyOrigin, "GET /.well-known/oauth-authorization-server", "metadata", s.handleMetadata) // RFC 8414
	if s.pages != nil && s.idSigner != nil {
		cors(corsAnyOrigin, "GET /.well-known/openid-configuration", "metadata", s.handleMetadata) // OpenID Connect Discovery 1.0 §4
	}
	if s.registration != RegisterOff {
		cors(corsAnyOrigin, "POST /oauth2/register", "register", s.handleRegister)               // RFC 7591 (register.go)
		cors(corsAnyOrigin, "GET /oauth2/register/{id}", "register", s.handleGetRegistration)    // RFC 7592
		cors(corsAnyOrigin, "PUT /oauth2/register/{id}", "register", s.handleUpdateRegistration) // RFC 7592
		cors(corsAnyOrigin, "DELETE /oauth2/register/{id}", "register", s.handleDeleteRegistration)
	}
	if s.pages != nil {
		page("GET /oauth2/authorize", "authorize", s.handleAuthorize) // RFC 6749 §4.1.1 (authorize.go)
		page("POST /oauth2/authorize", "consent", s.handleConsent)    // the consent form's answer
		page("GET /login", "login", s.pages.HandleLoginPage)
		page("POST /login", "login", s.pages.HandleLogin)
		page("POST /logout", "logout", s.pages.HandleLogout)
		page("GET /account/apps", "apps", s.pages.HandleApps)
		page("POST /account/apps/revoke", "apps_revoke", s.pages.HandleRevokeApp)
		page("GET /account/sessions", "sessions", s.pages.HandleSessions)
		page("POST /account/sessions/end", "sessions_end", s.pages.HandleEndSession)
		page("POST /account/sessions/end-others", "sessions_end", s.pages.HandleEndOtherSessions)
		page("POST /account/sessions/end-all", "sessions_end", s.pages.HandleEndAllSessions)
	}
	if s.idSigner != nil {
		cors(corsAnyOrigin, "GET /oauth2/userinfo", "userinfo", s.handleUserInfo)  // OpenID Connect Core 1.0 §5.3 (oidc.go)
		cors(corsAnyOrigin, "POST /oauth2/userinfo", "userinfo", s.handleUserInfo) //
	}
	if s.pages != nil && s.idSigner != nil {
		page("GET /oauth2/logout", "end_session", s.handleEndSession) // RP-Initiated Logout 1.0 (endsession.go)
		page("POST /oauth2/logout", "end_session", s.handleEndSession)
	}
	cors(corsAnyOrigin, "GET /.well-known/jwks.json", "jwks", s.handleJWKS)               // RFC 7517 (jwt.go)
	cors(corsAnyOrigin, "GET /oauth2/statuslists/{id}", "statuslist", s.handleStatusList) // Token Status List (jwt.go)
	route("GET /oauth2/revocations/events", "events", s.handleEvents)                     // revocation push (events.go)
	for _, r := range s.routes {                                                          // other packages' endpoints (the Shared Signals transmitter)
		route(r.Pattern, r.Endpoint, r.Handler)
	}
	route("GET /healthz", "healthz", s.handleHealthz)
	route("GET /readyz", "readyz", s.handleReadyz)
	for path, methods := range corsMethods {
		route("OPTIONS "+path, "preflight", s.preflight(corsPolicies[path], strings.Join(slices.Sorted(slices.Values(methods)), ", ")))
	}

	// Other methods on a known path: 405, in the format of what the path serves.
	for path, methods := range allow {
		allowed := strings.Join(slices.Compact(slices.Sorted(slices.Values(methods))), ", ")
		if pagePaths[path] {
			mux.Handle(path, pageHeaders(s.pageMethodNotAllowed(allowed)))
		} else {
			mux.Handle(path, methodNotAllowed(allowed))
		}
	}
	mux.HandleFunc("/", notFound)
	return withHeaders(s.recoverPanics(mux))
}

// pageMethodNotAllowed answers a page path asked with a method it does not serve.
func (s *Server) pageMethodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.pages.ShowError(w, r, http.StatusMethodNotAllowed, "This page does not accept that request.")
	}
}

// pageHeaders sets the headers every page carries: no framing (clickjacking of the consent
// page), no caching (pages and redirects carry sessions, CSRF tokens and codes), and a content
// security policy that lets the pages have inline styles and nothing else.
func pageHeaders(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-store")
		h(w, r)
	}
}
