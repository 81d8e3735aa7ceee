package oauth

import (
	"net/http"
	"net/url"

	"github.com/rescind/rescind"
)

// Pages is the browser-facing half of the public surface, which package web provides: the page
// handlers the route table (routes.go) mounts, and what the authorization endpoint asks of the
// person's browser (Browser). Pages decide nothing of the protocol: which authorization
// requests are valid, where a browser may be sent back to, and what a code is bound to are
// decided in this package.
type Pages interface {
	Browser
	// HandleLoginPage serves GET /login: the sign-in form, which returns to the "next" path.
	HandleLoginPage(w http.ResponseWriter, r *http.Request)
	// HandleLogin serves POST /login: it checks the credentials and signs the person in.
	HandleLogin(w http.ResponseWriter, r *http.Request)
	// HandleLogout serves POST /logout: it ends the browser's session (everywhere) and signs
	// the browser out.
	HandleLogout(w http.ResponseWriter, r *http.Request)
	// HandleApps serves GET /account/apps: the apps the signed-in person granted access to.
	HandleApps(w http.ResponseWriter, r *http.Request)
	// HandleRevokeApp serves POST /account/apps/revoke: the person revokes one of their grants.
	HandleRevokeApp(w http.ResponseWriter, r *http.Request)
	// HandleSessions serves GET /account/sessions: the signed-in person's sessions.
	HandleSessions(w http.ResponseWriter, r *http.Request)
	// HandleEndSession serves POST /account/sessions/end: the person signs one session out.
	HandleEndSession(w http.ResponseWriter, r *http.Request)
	// HandleEndOtherSessions serves POST /account/sessions/end-others: every other session ends.
	HandleEndOtherSessions(w http.ResponseWriter, r *http.Request)
	// HandleEndAllSessions serves POST /account/sessions/end-all: every session ends, this one
	// too ("Sign out everywhere").
	HandleEndAllSessions(w http.ResponseWriter, r *http.Request)
}

// Browser is what the authorization endpoint (RFC 6749 §4.1.1) needs of the person's browser:
// who is signed in on it, and the pages it is shown. Every method that takes w answers the
// request.
type Browser interface {
	// SignedIn returns the person signed in on the browser that sent r, as stored now; false if
	// no one is (no session, an ended one, or a deleted user).
	SignedIn(r *http.Request) (rescind.User, bool)
	// Session returns the session the browser that sent r is signed in with (its ID is
	// recorded on the grants and codes made in it); false if it has none.
	Session(r *http.Request) (rescind.Session, bool)
	// SignIn sends the browser to sign in, and afterwards to next, a path on this server.
	SignIn(w http.ResponseWriter, r *http.Request, next string)
	// ShowConsent asks user whether client may have scopes, for the resources (RFC 8707; none:
	// this server's own). Its form posts request (the authorization request's query, validated
	// again on return) and the decision to POST /oauth2/authorize, where ReadConsent reads them.
	ShowConsent(w http.ResponseWriter, r *http.Request, client rescind.Client, user rescind.User, scopes, resources []string, request string)
	// ReadConsent reads the consent form posted by the browser that sent r: the authorization
	// request it carries and whether the person allowed it. If ok is false the form was not
	// one ShowConsent made for this browser (a forged or expired form, no decision), and
	// ReadConsent has answered with an error page.
	ReadConsent(w http.ResponseWriter, r *http.Request) (request string, allow, ok bool)
	// SignOut ends the session of the browser that sent r, if any, on every instance (its
	// relying parties are told), with reason on record, and drops its cookie.
	SignOut(w http.ResponseWriter, r *http.Request, reason string) error
	// ShowLogoutConfirm asks the person whether to sign out (OpenID Connect RP-Initiated Logout
	// 1.0 §2), for clientName if known; its form posts request (the logout request's
	// parameters, validated again on return) and the decision to POST /oauth2/logout, where
	// ReadLogoutConfirm reads them.
	ShowLogoutConfirm(w http.ResponseWriter, r *http.Request, clientName, request string)
	// ReadLogoutConfirm reads that form: the request it carries and whether the person chose to
	// sign out. If ok is false it was not a form made for this browser, and ReadLogoutConfirm
	// has answered with an error page.
	ReadLogoutConfirm(w http.ResponseWriter, r *http.Request) (request string, signOut, ok bool)
	// ShowLogoutResubmit answers with a page of this server that posts params to POST
	// /oauth2/logout at once: the same request, made from this origin, so that it carries the
	// SameSite=Lax session cookie a cross-site POST lacked, its parameters in the body.
	ShowLogoutResubmit(w http.ResponseWriter, r *http.Request, params url.Values)
	// ShowSignedOut tells the person they are signed out (or, with false, still signed in), when
	// there is nowhere to send the browser back to.
	ShowSignedOut(w http.ResponseWriter, r *http.Request, signedOut bool)
	// ShowError answers with an error page of status saying msg, for a request that must not be
	// sent back to the client (RFC 6749 §4.1.2.1: an unknown client or redirect URI).
	ShowError(w http.ResponseWriter, r *http.Request, status int, msg string)
}
