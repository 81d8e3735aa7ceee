package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientip"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/secret"
)

// maxUsername bounds the username a login may type (in bytes): a longer one is refused before
// anything is reserved or looked up.
const maxUsername = 256

// loginKeys are the Limiter buckets of a login attempt: its source network (an IPv6 /64 is one
// party: clientip.Network), and the username at that network.
func loginKeys(r *http.Request, username string) []string {
	n := clientip.Network(r.RemoteAddr)
	return []string{"login-addr:" + n, "user:" + username + "|" + n}
}

// userKey is the UserLimiter bucket of a login attempt: the username alone, wherever the
// attempt comes from.
func userKey(username string) string { return "login-user:" + username }

// deviceKey is the UserLimiter bucket of a login attempt made with a device cookie: that
// cookie's own (its nonce), instead of the username's.
func deviceKey(nonce string) string { return "login-device:" + nonce }

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
	if len(username) > maxUsername {
		s.render(w, http.StatusBadRequest, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
			"Error": "That username is too long."})
		return
	}
	// The tokens are taken before the password is checked, so that a burst of concurrent
	// attempts cannot all be checked; a successful login gives them back.
	res, ok, retry := s.reserveLogin(r, username)
	if !ok {
		s.cfg.Logger.WarnContext(r.Context(), "security: login rate limited", "username_hash", UsernameHash(username), "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry/time.Second))))
		s.render(w, http.StatusTooManyRequests, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
			"Username": username, "Error": "Too many failed attempts. Wait a little and try again."})
		return
	}
	// The checks of one network hold at most a share of the process's password-check places.
	ctx := secret.WithClaimant(r.Context(), clientip.Network(r.RemoteAddr))
	u, err := s.cfg.Users.Authenticate(ctx, username, password)
	if errors.Is(err, ErrBadCredentials) {
		s.loginFailed(res)
		s.cfg.Logger.WarnContext(r.Context(), "failed login", "username_hash", UsernameHash(username), "remote", r.RemoteAddr)
		s.render(w, http.StatusUnauthorized, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
			"Username": username, "Error": "Wrong username or password."})
		return
	}
	res.refund() // not a failed attempt: a success, or the server could not tell
	if errors.Is(err, secret.ErrShareInUse) {
		s.cfg.Logger.WarnContext(r.Context(), "security: login refused: this address's share of the password checks is in use", "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "1")
		s.render(w, http.StatusTooManyRequests, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
			"Username": username, "Error": "Too many attempts at once. Wait a little and try again."})
		return
	}
	if errors.Is(err, secret.ErrBusy) {
		s.cfg.Logger.WarnContext(r.Context(), "login refused: too many password checks under way", "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "1")
		s.render(w, http.StatusServiceUnavailable, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
			"Username": username, "Error": "The server is busy. Try again in a moment."})
		return
	}
	if err != nil && r.Context().Err() != nil {
		// The browser went away while the check waited its turn: nothing went wrong here.
		s.cfg.Logger.DebugContext(r.Context(), "login abandoned by the client", "remote", r.RemoteAddr, "err", err)
		return
	}
	if err != nil {
		s.serverError(w, r, "authenticating user", err)
		return
	}
	var signIn *ratelimit.Reservation
	if s.cfg.SignInLimiter != nil {
		var ok bool
		var retry time.Duration
		if signIn, ok, retry = s.cfg.SignInLimiter.Reserve("signin:" + u.ID); !ok {
			s.cfg.Logger.WarnContext(r.Context(), "security: sign-ins of one person rate limited", "user", u.Username, "remote", r.RemoteAddr)
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry/time.Second))))
			s.render(w, http.StatusTooManyRequests, "login.html", map[string]any{"Title": "Sign in", "CSRF": s.csrfToken(w, r), "Next": next,
				"Username": username, "Error": "Too many sign-ins. Wait a little and try again."})
			return
		}
	}
	_, err = s.sessions.Start(w, r, u)
	if err != nil {
		signIn.Refund() // no session was made: nothing to bound
	}
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
	if s.cfg.UserLimiter != nil {
		s.setDevice(w, r, username)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// loginReservation is what a login attempt took from the limiters before its check.
type loginReservation struct {
	res []*ratelimit.Reservation
	// user is the username's UserLimiter bucket, when the attempt was let through by its
	// device cookie's bucket instead: a failure is charged to it too.
	user string
}

// refund gives the attempt's tokens back: it did not fail.
func (l loginReservation) refund() {
	for _, rv := range l.res {
		rv.Refund()
	}
}

// loginFailed charges a failed attempt that its device cookie let through to the username's
// bucket as well (without refusing anything): a device cookie spares its browser the
// username's bucket while others empty it, but adds no guesses of its own to the username's
// (a copy of the cookie in someone else's hands is worth at most the cookie's own bucket, once).
func (s *Server) loginFailed(l loginReservation) {
	if l.user != "" && s.cfg.UserLimiter != nil {
		s.cfg.UserLimiter.Fail(l.user)
	}
}

// reserveLogin takes a login attempt's tokens: from Limiter (its network, and the username
// there) and from UserLimiter: the bucket of this browser's device cookie if it carries a
// valid one for username (it signed the person in before, and the person has not forgotten
// their browsers since) and that bucket has a token; otherwise the username's, wherever the
// attempt comes from. So guesses from elsewhere that empty the username's bucket do not lock
// the person out of their own browsers, and a device cookie whose own bucket is empty (its
// holder guesses) is trusted no more than none. If a bucket is empty nothing is taken, ok is
// false and retryAfter says when to try again.
func (s *Server) reserveLogin(r *http.Request, username string) (res loginReservation, ok bool, retryAfter time.Duration) {
	if s.cfg.Limiter != nil {
		a, ok, retry := s.cfg.Limiter.Reserve(loginKeys(r, username)...)
		if !ok {
			return res, false, retry
		}
		res.res = append(res.res, a)
	}
	if s.cfg.UserLimiter == nil {
		return res, true, 0
	}
	if nonce, known := s.knownDevice(r, username); known {
		if d, ok, _ := s.cfg.UserLimiter.Reserve(deviceKey(nonce)); ok {
			res.res, res.user = append(res.res, d), userKey(username)
			return res, true, 0
		}
	}
	u, ok, retry := s.cfg.UserLimiter.Reserve(userKey(username))
	if !ok {
		res.refund() // not checked: not a failed attempt of this network
		return loginReservation{}, false, retry
	}
	res.res = append(res.res, u)
	return res, true, 0
}

// deviceMaxAge is how long a browser is remembered as one its person signed in on.
const deviceMaxAge = 180 * 24 * time.Hour

// deviceMAC is the MAC a device cookie carries: of its nonce, the user's id and username and
// their DeviceEpoch as stored (so signing out everywhere, or an operator's user logout, makes
// every device cookie of the person worthless; a new password does not, so that the person is
// not locked out of their own browsers after it while someone keeps the username's bucket
// empty), under a key derived from the secrets key (every instance derives the same).
func (s *Server) deviceMAC(nonce string, u rescind.User) []byte {
	m := hmac.New(sha256.New, s.deviceKey)
	for _, part := range []string{nonce, u.ID, u.Username, strconv.FormatInt(u.DeviceEpoch, 10)} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// setDevice remembers, in a cookie only this server can make, that username signed in on the
// browser w answers: its later attempts are charged to the cookie's own bucket rather than the
// username's (reserveLogin), so that guesses from elsewhere cannot lock the person out of a
// browser they use.
func (s *Server) setDevice(w http.ResponseWriter, r *http.Request, username string) {
	u, err := s.cfg.Store.GetUserByUsername(r.Context(), username)
	if err != nil {
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	nonce := base64.RawURLEncoding.EncodeToString(b)
	v := nonce + "." + base64.RawURLEncoding.EncodeToString(s.deviceMAC(nonce, u))
	http.SetCookie(w, s.sessions.cookie(deviceCookie, v, int(deviceMaxAge/time.Second)))
}

// knownDevice reports whether the browser that sent r carries a device cookie of username made
// under the user's present DeviceEpoch, and returns its nonce.
func (s *Server) knownDevice(r *http.Request, username string) (string, bool) {
	c, err := r.Cookie(s.sessions.cookieName(deviceCookie))
	if err != nil || len(c.Value) > 200 {
		return "", false
	}
	nonce, mac, ok := strings.Cut(c.Value, ".")
	if !ok || nonce == "" {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return "", false
	}
	u, err := s.cfg.Store.GetUserByUsername(r.Context(), username)
	if err != nil {
		return "", false
	}
	return nonce, hmac.Equal(got, s.deviceMAC(nonce, u))
}

// HandleLogout serves POST /logout: it ends the browser's session on the server (a copy of the
// cookie is refused from then on, by every instance) and drops the cookie. A request without a
// session drops the cookie only if it comes from this site (a same-origin Sec-Fetch-Site or
// Origin, or the double-submit CSRF token): a cross-site POST arrives without the SameSite=Lax
// session cookie, and must not sign the person out of a session it cannot see. Either way it
// is sent to the login page.
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
	} else if !s.sameOrigin(r) && !s.checkCSRF(r) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.sessions.ClearCookie(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// sameOrigin reports whether the browser says r comes from a page of this server: Fetch
// Metadata's Sec-Fetch-Site "same-origin" or, from a browser that does not send it, an Origin
// that is the issuer's.
func (s *Server) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return false
	}
	iss, err := url.Parse(s.cfg.Issuer)
	return err == nil && strings.EqualFold(origin, iss.Scheme+"://"+iss.Host)
}

// appRow is one line of the connected apps page.
type appRow struct {
	GrantID, Name     string
	Scopes            []string
	Granted, LastUsed time.Time
	// Resources are the resources (RFC 8707) the app's tokens may be for, besides this server.
	Resources []string
	// Dynamic marks an app that registered itself (RFC 7591); Host, one identified by a client
	// metadata document, the host that serves it.
	Dynamic bool
	Host    string
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
		var res []string
		for _, a := range g.Audience {
			if a != s.cfg.Issuer {
				res = append(res, a)
			}
		}
		rows = append(rows, appRow{GrantID: g.ID, Name: c.Name, Scopes: g.Scopes, Granted: g.CreatedAt, LastUsed: g.LastUsedAt,
			Resources: res, Dynamic: c.Registration == rescind.RegistrationDynamic, Host: documentHost(c)})
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
