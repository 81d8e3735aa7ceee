package web

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"slices"

	"github.com/rescind/rescind"
)

// The end-session endpoint (package oauth, OpenID Connect RP-Initiated Logout 1.0) decides;
// these methods are what it asks of the person's browser.

// SignOut ends the session of the browser that sent r, if it has one, on every instance (its
// relying parties are told: back-channel logout), and drops its cookie.
func (s *Server) SignOut(w http.ResponseWriter, r *http.Request, reason string) error {
	if sess, u, ok := s.sessions.Current(r); ok {
		if _, err := s.sessions.End(r.Context(), rescind.SessionFilter{UserID: sess.UserID, ID: sess.ID}, "user:"+u.Username, reason); err != nil {
			return err
		}
	}
	s.sessions.ClearCookie(w)
	return nil
}

// ShowLogoutConfirm asks the person signed in on the browser whether to sign out (RP-Initiated
// Logout 1.0 §2: the request did not show it came from their session). clientName is the app
// that asked, if known. The form posts request back to POST /oauth2/logout with the decision.
func (s *Server) ShowLogoutConfirm(w http.ResponseWriter, r *http.Request, clientName, request string) {
	_, u, _ := s.sessions.Current(r)
	s.render(w, http.StatusOK, "logout.html", map[string]any{"Title": "Sign out", "ClientName": clientName, "Username": u.Username,
		"CSRF": s.csrfToken(w, r), "Request": request})
}

// ReadLogoutConfirm reads the form ShowLogoutConfirm made: the request it carries and whether
// the person chose to sign out. If ok is false the form was not one made for this browser, and
// it has answered with an error page.
func (s *Server) ReadLogoutConfirm(w http.ResponseWriter, r *http.Request) (request string, signOut, ok bool) {
	return s.readDecision(w, r, "logout_request", "logout", "stay", "Choose to sign out or to stay signed in.")
}

// ShowSignedOut says the browser is signed out (or was not signed in), when there is nowhere
// to send it back to.
func (s *Server) ShowSignedOut(w http.ResponseWriter, r *http.Request, signedOut bool) {
	msg := "You are signed out."
	if !signedOut {
		msg = "You are still signed in."
	}
	s.render(w, http.StatusOK, "signedout.html", map[string]any{"Title": "Sign out", "Message": msg})
}

// logoutResubmitScript submits the form of logoutresubmit.html as soon as the page loads.
const logoutResubmitScript = `document.getElementById("resubmit").submit();`

// logoutResubmitCSP is the page's Content-Security-Policy: the pages' own, with the one script
// above allowed by its hash (CSP Level 2 hash-source). No form-action: Chromium applies it to
// the redirects that follow a form submission too, so form-action 'self' blocked the end-session
// endpoint's 303 to the app's registered post_logout_redirect_uri (another origin) and left the
// person on this page, signed out but never sent back (re-audit 4 #1). The form's action is fixed
// by the template (/oauth2/logout) and the only script allowed is the one above, so nothing on the
// page can point the form elsewhere; where the 303 goes is decided by the endpoint, which sends
// the browser only to a URI registered for the client.
var logoutResubmitCSP = func() string {
	sum := sha256.Sum256([]byte(logoutResubmitScript))
	return "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; frame-ancestors 'none'; base-uri 'none'"
}()

// ShowLogoutResubmit answers with a page of this server that posts params to POST
// /oauth2/logout at once (a script its Content-Security-Policy allows by hash; without scripts,
// at a click). A POST from this origin is same-site, so it carries the SameSite=Lax session
// cookie that a cross-site POST lacked, and the parameters stay in a request body: never in a
// URL, where an id_token_hint (the person's name, email) would reach history and logs.
func (s *Server) ShowLogoutResubmit(w http.ResponseWriter, r *http.Request, params url.Values) {
	type field struct{ Name, Value string }
	var fields []field
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range params[k] {
			fields = append(fields, field{k, v})
		}
	}
	w.Header().Set("Content-Security-Policy", logoutResubmitCSP)
	// The form's POST carries this origin in its Origin header (no-referrer would make it
	// "null"), which the end-session endpoint reads to tell it from a cross-site one.
	w.Header().Set("Referrer-Policy", "same-origin")
	s.render(w, http.StatusOK, "logoutresubmit.html", map[string]any{"Title": "Signing out", "Fields": fields,
		"Script": template.JS(logoutResubmitScript)})
}
