package oauth

import "net/http"

// Handler returns the HTTP handler for all public endpoints. This is the one route table.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, endpoint string, h http.HandlerFunc) {
		mux.Handle(pattern, s.metrics.Instrument(endpoint, h))
	}
	route("POST /oauth2/token", "token", s.handleToken)
	route("POST /oauth2/revoke", "revoke", s.handleRevoke)
	route("POST /oauth2/introspect", "introspect", s.handleIntrospect)
	route("GET /.well-known/oauth-authorization-server", "metadata", s.handleMetadata)
	route("GET /.well-known/openid-configuration", "metadata", s.handleMetadata)
	if s.pages != nil {
		// The authorization endpoint (authorize.go) and the pages it shows (package web).
		page := func(pattern, endpoint string, h http.HandlerFunc) { route(pattern, endpoint, pageHeaders(h)) }
		page("GET /oauth2/authorize", "authorize", s.handleAuthorize)
		page("POST /oauth2/authorize", "consent", s.handleConsent)
		page("GET /login", "login", s.pages.HandleLoginPage)
		page("POST /login", "login", s.pages.HandleLogin)
		page("POST /logout", "logout", s.pages.HandleLogout)
		page("GET /account/apps", "apps", s.pages.HandleApps)
		page("POST /account/apps/revoke", "apps_revoke", s.pages.HandleRevokeApp)
	}
	route("GET /.well-known/jwks.json", "jwks", s.handleJWKS)
	route("GET /oauth2/statuslists/{id}", "statuslist", s.handleStatusList)
	route("GET /oauth2/revocations/events", "events", s.handleEvents)
	route("GET /healthz", "healthz", s.handleHealthz)
	route("GET /readyz", "readyz", s.handleReadyz)

	// Other methods on known paths get a 405 in the protocol's JSON format, not the mux's text.
	for _, p := range []string{"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"} {
		mux.Handle(p, methodNotAllowed(http.MethodPost))
	}
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/healthz", "/readyz"} {
		mux.Handle(p, methodNotAllowed(http.MethodGet))
	}
	mux.HandleFunc("/", notFound)
	return withHeaders(s.recoverPanics(mux))
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
