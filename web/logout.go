package web

import (
	"net/http"

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
