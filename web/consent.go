package web

import (
	"net/http"
	"net/url"

	"github.com/rescind/rescind"
)

// The authorization endpoint (package oauth) decides; these methods are what it asks of the
// person's browser (oauth.Browser).

// SignIn sends the browser to the login page, which returns it to next after signing in.
func (s *Server) SignIn(w http.ResponseWriter, r *http.Request, next string) {
	http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
}

// ShowConsent renders the consent page: user is asked whether client may have scopes. The form
// posts request back with the decision and the browser's CSRF token.
func (s *Server) ShowConsent(w http.ResponseWriter, r *http.Request, client rescind.Client, user rescind.User, scopes []string, request string) {
	s.render(w, http.StatusOK, "consent.html", map[string]any{
		"Title": "Allow access", "ClientName": client.Name, "Username": user.Username, "Scopes": scopes,
		"CSRF": s.csrfToken(w, r), "Request": request,
	})
}

// ReadConsent reads the consent form: it must carry the browser's CSRF token, one request and
// a decision of allow or deny. Otherwise it answers with an error page and returns ok false.
func (s *Server) ReadConsent(w http.ResponseWriter, r *http.Request) (request string, allow, ok bool) {
	if err := parsePost(w, r); err != nil {
		s.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return "", false, false
	}
	if !s.checkCSRF(r) {
		s.renderError(w, http.StatusForbidden, "This form has expired or did not come from this site. Go back and try again.")
		return "", false, false
	}
	request, err := formValue(r, "request")
	if err != nil {
		s.renderError(w, http.StatusBadRequest, err.Error())
		return "", false, false
	}
	switch d, _ := formValue(r, "decision"); d {
	case "allow":
		return request, true, true
	case "deny":
		return request, false, true
	}
	s.renderError(w, http.StatusBadRequest, "Choose Allow or Deny.")
	return "", false, false
}

// ShowError renders the error page with status and msg.
func (s *Server) ShowError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.renderError(w, status, msg)
}
