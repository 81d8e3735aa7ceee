package web

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
)

const (
	sessionCookie = "rescind_session"
	csrfCookie    = "rescind_csrf"
)

// Sessions keeps who is signed in on which browser: the one place where sessions are started,
// read and ended. The pages and the authorization endpoint learn who is signed in only through
// Server.SignedIn, which reads the session here and the user from the store.
type Sessions interface {
	// Start signs user in on the browser that sent r; its answer w carries what the browser
	// keeps (a cookie).
	Start(w http.ResponseWriter, r *http.Request, user rescind.User) error
	// Current returns the id of the user signed in on the browser that sent r; false if none is
	// (no session, an expired or ended one, or one that does not open).
	Current(r *http.Request) (userID string, ok bool)
	// End signs the browser that sent r out.
	End(w http.ResponseWriter, r *http.Request) error
}

// cookieSessions are sessions held by the browser alone: a cookie sealed under the secrets key
// (so every instance can read it) naming the user and the expiry. Ending one deletes the cookie
// from the browser; a copy taken before works until its expiry.
type cookieSessions struct {
	box    *secret.Box
	ttl    time.Duration
	secure bool
	now    func() time.Time
}

var sessionAAD = []byte("rescind session v1")

// sessionCookieValue is what a session cookie seals.
type sessionCookieValue struct {
	UserID   string `json:"u"`
	Username string `json:"n"`
	Expiry   int64  `json:"e"`
}

// cookie returns a cookie of this site: HttpOnly, SameSite=Lax, Secure on an https issuer.
func cookie(name, value string, maxAge int, secure bool) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteLaxMode}
}

// Start implements Sessions.
func (c cookieSessions) Start(w http.ResponseWriter, _ *http.Request, user rescind.User) error {
	exp := c.now().Add(c.ttl)
	b, _ := json.Marshal(sessionCookieValue{UserID: user.ID, Username: user.Username, Expiry: exp.Unix()})
	sealed, err := c.box.Seal(b, sessionAAD)
	if err != nil {
		return err
	}
	http.SetCookie(w, cookie(sessionCookie, base64.RawURLEncoding.EncodeToString(sealed), int(c.ttl/time.Second), c.secure))
	return nil
}

// Current implements Sessions.
func (c cookieSessions) Current(r *http.Request) (string, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || len(ck.Value) > 4096 {
		return "", false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return "", false
	}
	b, err := c.box.Open(sealed, sessionAAD)
	if err != nil {
		return "", false
	}
	var v sessionCookieValue
	if json.Unmarshal(b, &v) != nil || v.UserID == "" || c.now().Unix() >= v.Expiry {
		return "", false
	}
	return v.UserID, true
}

// End implements Sessions.
func (c cookieSessions) End(w http.ResponseWriter, _ *http.Request) error {
	http.SetCookie(w, cookie(sessionCookie, "", -1, c.secure))
	return nil
}

// SignedIn returns the person signed in on the browser that sent r, as stored now (without the
// password hash); false if no one is. A deleted user's session ends with them: their grants are
// revoked, and a session started before the deletion must not consent to new ones.
func (s *Server) SignedIn(r *http.Request) (rescind.User, bool) {
	id, ok := s.sessions.Current(r)
	if !ok {
		return rescind.User{}, false
	}
	u, err := s.cfg.Store.GetUser(r.Context(), id)
	if err != nil {
		return rescind.User{}, false
	}
	u.PasswordHash = ""
	return u, true
}

// csrfToken returns the browser's CSRF token, setting the cookie if it has none.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, cookie(csrfCookie, tok, 0, s.secure))
	return tok
}

// checkCSRF reports whether a parsed POST carries the browser's CSRF token.
func (s *Server) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" {
		return false
	}
	got, err := formValue(r, "csrf_token")
	return err == nil && secret.Equal(got, c.Value)
}
