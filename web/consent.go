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

// ShowConsent renders the consent page: user is asked whether client may have scopes, for the
// resources named (RFC 8707). A client that registered itself is shown as such: its name is its
// own claim. The form posts request back with the decision and the browser's CSRF token.
func (s *Server) ShowConsent(w http.ResponseWriter, r *http.Request, client rescind.Client, user rescind.User, scopes, resources []string, request string) {
	s.render(w, http.StatusOK, "consent.html", map[string]any{
		"Title": "Allow access", "ClientName": client.Name, "Username": user.Username, "Scopes": scopes,
		"Resources": resources, "SelfRegistered": client.SelfRegistered(), "ClientHost": documentHost(client),
		"CSRF": s.csrfToken(w, r), "Request": request,
	})
}

// documentHost is the host serving the metadata document of a client identified by one (its
// client_id is the document's URL), else "".
func documentHost(c rescind.Client) string {
	if c.Registration != rescind.RegistrationMetadataDocument {
		return ""
	}
	u, err := url.Parse(c.ID)
	if err != nil {
		return ""
	}
	return u.Host
}

// ReadConsent reads the consent form: it must carry the browser's CSRF token, one request and
// a decision of allow or deny. Otherwise it answers with an error page and returns ok false.
func (s *Server) ReadConsent(w http.ResponseWriter, r *http.Request) (request string, allow, ok bool) {
	return s.readDecision(w, r, "request", "allow", "deny", "Choose Allow or Deny.")
}

// readDecision reads a form of this site that carries a request (in field) and a decision,
// yes or no: the form must carry the browser's CSRF token. Otherwise, or with another
// decision (then saying choose), it answers with an error page and returns ok false.
func (s *Server) readDecision(w http.ResponseWriter, r *http.Request, field, yes, no, choose string) (request string, decision, ok bool) {
	if err := parsePost(w, r); err != nil {
		s.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return "", false, false
	}
	if !s.checkCSRF(r) {
		s.renderError(w, http.StatusForbidden, "This form has expired or did not come from this site. Go back and try again.")
		return "", false, false
	}
	request, err := formValue(r, field)
	if err != nil {
		s.renderError(w, http.StatusBadRequest, err.Error())
		return "", false, false
	}
	switch d, _ := formValue(r, "decision"); d {
	case yes:
		return request, true, true
	case no:
		return request, false, true
	}
	s.renderError(w, http.StatusBadRequest, choose)
	return "", false, false
}

// ShowError renders the error page with status and msg.
func (s *Server) ShowError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.renderError(w, status, msg)
}
