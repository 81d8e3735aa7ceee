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
		// The pages (package web): authorization endpoint, login, consent, connected apps.
		route("GET /oauth2/authorize", "authorize", s.pages.ServeHTTP)
		route("POST /oauth2/authorize", "consent", s.pages.ServeHTTP)
		route("GET /login", "login", s.pages.ServeHTTP)
		route("POST /login", "login", s.pages.ServeHTTP)
		route("POST /logout", "logout", s.pages.ServeHTTP)
		route("GET /account/apps", "apps", s.pages.ServeHTTP)
		route("POST /account/apps/revoke", "apps_revoke", s.pages.ServeHTTP)
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
