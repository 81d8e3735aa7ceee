package oauth

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/rescind/rescind"
)

// logoutRequest is a validated RP-initiated logout request (OpenID Connect RP-Initiated Logout
// 1.0 §2).
type logoutRequest struct {
	client   rescind.Client // the relying party, if the request names one
	hint     *idTokenClaims // the verified id_token_hint, if any
	redirect string         // post_logout_redirect_uri, registered for client
	state    string
	raw      string // the parameters, carried through the confirmation page
}

// parseLogoutRequest validates the parameters raw of an RP-initiated logout. A problem is an
// error page (the browser is never sent to an unverified URI): an id_token_hint this server did
// not issue, a client_id other than the hint's audience, a post_logout_redirect_uri without a
// client or not registered for it exactly (§2, §3).
func (s *Server) parseLogoutRequest(r *http.Request, raw string) (*logoutRequest, string) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, "The logout request is malformed."
	}
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, "The logout request has more than one " + quoteParam(k) + "."
		}
	}
	lr := &logoutRequest{raw: raw, state: q.Get("state"), redirect: q.Get("post_logout_redirect_uri")}
	if len(lr.state) > 2048 {
		return nil, "The logout request's state is too long."
	}
	clientID := q.Get("client_id")
	if hint := q.Get("id_token_hint"); hint != "" {
		c, err := s.parseIDToken(r.Context(), hint)
		if err != nil {
			return nil, "The logout request's id_token_hint is not an ID token this server issued."
		}
		if clientID != "" && clientID != c.Audience {
			return nil, "The logout request's client_id is not the audience of its id_token_hint."
		}
		lr.hint, clientID = &c, c.Audience
	}
	if clientID != "" {
		c, err := s.clients.Get(r.Context(), clientID)
		if err != nil {
			if !errors.Is(err, rescind.ErrNotFound) {
				s.log.ErrorContext(r.Context(), "reading client", "err", err)
			}
			return nil, "The logout request names an unknown client."
		}
		lr.client = c
	}
	if lr.redirect != "" {
		if lr.client.ID == "" {
			return nil, "A post_logout_redirect_uri needs the client: send id_token_hint or client_id."
		}
		if !slices.Contains(lr.client.PostLogoutRedirectURIs, lr.redirect) {
			return nil, "The post_logout_redirect_uri is not registered for this client."
		}
	}
	return lr, ""
}

// handleEndSession is the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0 §2, GET
// or POST). The browser's session ends at once when the id_token_hint shows the request comes
// from it (the hint's sid is the session's and its sub the person's); otherwise (no hint, or a
// stale one: another sign-in, an older session) the person is asked to confirm, since anyone
// can send a browser here. Ending the session tells every app signed in with it (back-channel
// logout, through the Committer). The browser is then sent to the post_logout_redirect_uri,
// with state, if one was given and registered; else shown that it is signed out. A POST
// without a session cookie (cross-site: SameSite=Lax keeps it back) is answered with a page
// that posts the same request again from this origin, with the cookie, before anything is
// reported.
func (s *Server) handleEndSession(w http.ResponseWriter, r *http.Request) {
	raw, fromConfirm, decided, resubmitted := r.URL.RawQuery, false, false, false
	if r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			s.pages.ShowError(w, r, http.StatusBadRequest, "The logout request must be a form.")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
		if err != nil {
			s.pages.ShowError(w, r, http.StatusBadRequest, "The logout request could not be read.")
			return
		}
		q, err := url.ParseQuery(string(body))
		if err != nil {
			s.pages.ShowError(w, r, http.StatusBadRequest, "The logout request is malformed.")
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		switch {
		case q.Has("logout_request"):
			var ok bool
			if raw, decided, ok = s.pages.ReadLogoutConfirm(w, r); !ok {
				return
			}
			fromConfirm = true
		case q.Has(logoutResubmitted):
			q.Del(logoutResubmitted)
			raw, resubmitted = q.Encode(), true
		default:
			raw = string(body)
		}
	}
	lr, pageErr := s.parseLogoutRequest(r, raw)
	if pageErr != "" {
		s.pages.ShowError(w, r, http.StatusBadRequest, pageErr)
		return
	}
	sess, signedIn := s.pages.Session(r)
	switch {
	case !signedIn && r.Method == http.MethodPost && !fromConfirm && (!resubmitted || s.crossSite(r)):
		// A cross-site form POST (the usual RP-initiated logout by POST) does not carry the
		// SameSite=Lax session cookie, so no session here proves nothing. The browser is
		// answered with a page of this origin that posts the same request again, marked: that
		// POST is same-site and carries the cookie; only then is "signed out" known (never
		// reported when nothing was checked). Not a redirect to a GET: that would put the
		// id_token_hint, with the person's name and email, in a URL (re-audit 3A #4). A marked
		// POST that its browser says came from another site is answered the same way, so
		// the mark is no way around the check.
		q, _ := url.ParseQuery(raw) // parsed without error by parseLogoutRequest
		q.Set(logoutResubmitted, "1")
		s.pages.ShowLogoutResubmit(w, r, q)
		return
	case !signedIn:
		// Nothing to end here (already signed out, or signed out elsewhere).
	case fromConfirm && !decided:
		s.finishLogout(w, r, lr, false)
		return
	case fromConfirm || (lr.hint != nil && lr.hint.SID == sess.ID && lr.hint.Subject == sess.UserID):
		if err := s.pages.SignOut(w, r, "rp-initiated logout"); err != nil {
			s.pageError(w, r, "ending session", err)
			return
		}
	default:
		s.pages.ShowLogoutConfirm(w, r, lr.client.Name, lr.raw)
		return
	}
	s.finishLogout(w, r, lr, true)
}

// logoutResubmitted is the field that marks a logout request posted again by the page of
// Browser.ShowLogoutResubmit; it is not part of the request.
const logoutResubmitted = "logout_resubmitted"

// crossSite reports whether the browser says r came from a page of another origin than the
// issuer's: by Fetch Metadata (Sec-Fetch-Site other than same-origin), else by its Origin
// header ("null", as an opaque or hidden origin sends, included). A request with neither
// (a browser without them, or not a browser) is not known to be cross-site.
func (s *Server) crossSite(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site != "same-origin"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(s.issuer)
	return err != nil || origin != u.Scheme+"://"+u.Host
}

// finishLogout sends the browser to the request's post_logout_redirect_uri with its state
// (§3), or shows whether it is signed out.
func (s *Server) finishLogout(w http.ResponseWriter, r *http.Request, lr *logoutRequest, signedOut bool) {
	if lr.redirect == "" {
		s.pages.ShowSignedOut(w, r, signedOut)
		return
	}
	u, err := url.Parse(lr.redirect)
	if err != nil {
		s.pages.ShowError(w, r, http.StatusBadRequest, "The post_logout_redirect_uri is invalid.")
		return
	}
	if lr.state != "" {
		q := u.Query()
		q.Set("state", lr.state)
		u.RawQuery = q.Encode()
	}
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}
