package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/secret"
)

// loginKeys are the rate-limit buckets of a login attempt.
func loginKeys(r *http.Request, username string) []string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return []string{"login-addr:" + host, "user:" + username + "|" + host}
}

// UsernameHash identifies a typed username in logs without the text: the first 8 bytes of its
// SHA-256, in hex. A person who types their password into the username field must not find it
// in the log; an operator can still tell repeated attempts on one name apart from a spray, and
// check a suspected name with: printf '%s' NAME | sha256sum | cut -c1-16.
func UsernameHash(username string) string {
	h := sha256.Sum256([]byte(username))
	return hex.EncodeToString(h[:8])
}

// safeNext returns next if it is an absolute path on this server, else the apps page, so the
// login form cannot send the browser anywhere else. It allows only what RFC 3986 calls a
// path-absolute reference with an optional query: printable ASCII without backslash or space,
// one leading slash not followed by another slash. Browsers strip tabs and newlines from a URL,
// trim control characters and read a backslash as a slash (the WHATWG URL standard), so
// "/<TAB>/evil.example" would leave the origin: every such character is refused, not cleaned.
func safeNext(next string) string {
	const home = "/account/apps"
	if len(next) < 1 || len(next) > 8192 || next[0] != '/' {
		return home
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return home
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.HasPrefix(next, "//") {
		return home
	}
	return next
}

// loginHint returns the username to prefill: login_hint (OpenID Connect Core 1.0 §3.1.2.1), given
// to the login page or carried in the authorization request it returns to; bounded.
func loginHint(hint, next string) string {
	if hint == "" {
		if u, err := url.Parse(next); err == nil {
			hint = u.Query().Get("login_hint")
		}
	}
	if len(hint) > 100 || !utf8.ValidString(hint) {
		return ""
	}
	return hint
}

// HandleLoginPage serves GET /login: the sign-in form, which returns to the "next" path (only
// a path on this server: safeNext).
func (s *Server) HandleLoginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	s.render(w, http.StatusOK, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r),
		"Next": next, "Username": loginHint(r.URL.Query().Get("login_hint"), next)})
}

// HandleLogin serves POST /login: it checks the credentials, with failures rate-limited and
// logged without the username typed, and signs the person in.
func (s *Server) HandleLogin(w http.ResponseWriter, r *http.Request) {
	if err := parsePost(w, r); err != nil {
		s.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	next, _ := formValue(r, "next")
	next = safeNext(next)
	if !s.checkCSRF(r) {
		s.render(w, http.StatusForbidden, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
			"Error": "This form has expired. Please sign in again."})
		return
	}
	username, err1 := formValue(r, "username")
	password, err2 := formValue(r, "password")
	if err1 != nil || err2 != nil || username == "" || password == "" {
		s.render(w, http.StatusBadRequest, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
			"Username": username, "Error": "Enter your username and password."})
		return
	}
	keys := loginKeys(r, username)
	var res *ratelimit.Reservation
	if s.cfg.Limiter != nil {
		// The tokens are taken before the password is checked, so that a burst of concurrent
		// attempts cannot all be checked; a successful login gives them back.
		var ok bool
		var retry time.Duration
		if res, ok, retry = s.cfg.Limiter.Reserve(keys...); !ok {
			s.cfg.Logger.WarnContext(r.Context(), "security: login rate limited", "username_hash", UsernameHash(username), "remote", r.RemoteAddr)
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry/time.Second))))
			s.render(w, http.StatusTooManyRequests, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
				"Username": username, "Error": "Too many failed attempts. Wait a little and try again."})
			return
		}
	}
	u, err := s.cfg.Users.Authenticate(r.Context(), username, password)
	if errors.Is(err, ErrBadCredentials) {
		s.cfg.Logger.WarnContext(r.Context(), "failed login", "username_hash", UsernameHash(username), "remote", r.RemoteAddr)
		s.render(w, http.StatusUnauthorized, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
			"Username": username, "Error": "Wrong username or password."})
		return
	}
	res.Refund() // not a failed attempt: a success, or the server could not tell
	if errors.Is(err, secret.ErrBusy) {
		s.cfg.Logger.WarnContext(r.Context(), "login refused: too many password checks under way", "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "1")
		s.render(w, http.StatusServiceUnavailable, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
			"Username": username, "Error": "The server is busy. Try again in a moment."})
		return
	}
	if err != nil {
		s.serverError(w, r, "authenticating user", err)
		return
	}
	_, err = s.sessions.Start(w, r, u)
	if errors.Is(err, rescind.ErrUserChanged) {
		// The person's sessions were ended (a new password, signing out everywhere) while this
		// sign-in was checked: it must not survive that.
		s.render(w, http.StatusConflict, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
			"Username": username, "Error": "Your account changed while you were signing in. Sign in again."})
		return
	}
	if err != nil {
		s.serverError(w, r, "session", err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// HandleLogout serves POST /logout: it ends the browser's session on the server (a copy of the
// cookie is refused from then on, by every instance) and drops the cookie. A browser without a
// session is only sent to the login page.
func (s *Server) HandleLogout(w http.ResponseWriter, r *http.Request) {
	if err := parsePost(w, r); err != nil {
		s.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	if sess, u, ok := s.sessions.Current(r); ok {
		if !s.checkCSRF(r) {
			s.renderError(w, http.StatusForbidden, "This form has expired. Go back and try again.")
			return
		}
		if _, err := s.sessions.End(r.Context(), rescind.SessionFilter{UserID: sess.UserID, ID: sess.ID}, "user:"+u.Username, "signed out"); err != nil {
			s.serverError(w, r, "ending session", err)
			return
		}
	}
	s.sessions.ClearCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// appRow is one line of the connected apps page.
type appRow struct {
	GrantID, Name     string
	Scopes            []string
	Granted, LastUsed time.Time
}

// HandleApps serves GET /account/apps: it lists the apps the person has an active grant with.
func (s *Server) HandleApps(w http.ResponseWriter, r *http.Request) {
	user, ok := s.SignedIn(r)
	if !ok {
		http.Redirect(w, r, "/login?next=%2Faccount%2Fapps", http.StatusSeeOther)
		return
	}
	grants, err := s.cfg.Store.ListGrants(r.Context(), rescind.GrantFilter{UserID: user.ID})
	if err != nil {
		s.serverError(w, r, "listing grants", err)
		return
	}
	var rows []appRow
	for _, g := range grants {
		if s.cfg.Committer.GrantRevoked(g.ID) {
			continue
		}
		c, err := s.cfg.Clients.Get(r.Context(), g.ClientID)
		if err != nil {
			continue // a deleted client's grants are revoked with it
		}
		rows = append(rows, appRow{GrantID: g.ID, Name: c.Name, Scopes: g.Scopes, Granted: g.CreatedAt, LastUsed: g.LastUsedAt})
	}
	sort.SliceStable(rows, func(i, j int) bool { return strings.ToLower(rows[i].Name) < strings.ToLower(rows[j].Name) })
	s.render(w, http.StatusOK, "apps.html", map[string]any{"Title": "Connected apps", "Username": user.Username,
		"Apps": rows, "CSRF": s.csrfToken(w, r)})
}

// HandleRevokeApp serves POST /account/apps/revoke: it revokes one of the person's grants, and
// every access and refresh token of it dies.
func (s *Server) HandleRevokeApp(w http.ResponseWriter, r *http.Request) {
	if err := parsePost(w, r); err != nil {
		s.renderError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	user, ok := s.SignedIn(r)
	if !ok {
		http.Redirect(w, r, "/login?next=%2Faccount%2Fapps", http.StatusSeeOther)
		return
	}
	if !s.checkCSRF(r) {
		s.renderError(w, http.StatusForbidden, "This form has expired. Go back to your connected apps and try again.")
		return
	}
	grantID, err := formValue(r, "grant_id")
	if err != nil || grantID == "" {
		s.renderError(w, http.StatusBadRequest, "No app was chosen.")
		return
	}
	g, err := s.cfg.Store.GetGrant(r.Context(), grantID)
	if err != nil || g.UserID != user.ID { // someone else's grant is as good as none
		http.Redirect(w, r, "/account/apps", http.StatusSeeOther)
		return
	}
	// The record lives as long as the grant's tokens (the store knows their latest expiry).
	_, _, err = s.cfg.Committer.RevokeGrants(r.Context(), rescind.GrantFilter{GrantID: g.ID, UserID: user.ID}, rescind.Revocation{
		RevokedAt: s.cfg.Now(), Actor: "user:" + user.Username, Reason: "connected apps page"})
	if err != nil {
		s.serverError(w, r, "revoking grant", err)
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "grant revoked by its user", "grant_id", g.ID, "client_id", g.ClientID, "user", user.Username)
	http.Redirect(w, r, "/account/apps", http.StatusSeeOther)
}
