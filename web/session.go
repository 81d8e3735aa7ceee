package web

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/rescind/rescind/internal/secret"
)

const (
	sessionCookie = "rescind_session"
	csrfCookie    = "rescind_csrf"
)

var sessionAAD = []byte("rescind session v1")

type session struct {
	UserID   string `json:"u"`
	Username string `json:"n"`
	Expiry   int64  `json:"e"`
}

func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode}
}

// setSession logs the user in on this browser.
func (s *Server) setSession(w http.ResponseWriter, userID, username string) error {
	exp := s.cfg.Now().Add(s.cfg.SessionTTL)
	b, _ := json.Marshal(session{UserID: userID, Username: username, Expiry: exp.Unix()})
	sealed, err := s.cfg.Box.Seal(b, sessionAAD)
	if err != nil {
		return err
	}
	http.SetCookie(w, s.cookie(sessionCookie, base64.RawURLEncoding.EncodeToString(sealed), int(s.cfg.SessionTTL/time.Second)))
	return nil
}

// currentSession returns the logged-in session, or nil.
func (s *Server) currentSession(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 4096 {
		return nil
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	b, err := s.cfg.Box.Open(sealed, sessionAAD)
	if err != nil {
		return nil
	}
	var sess session
	if json.Unmarshal(b, &sess) != nil || sess.UserID == "" || s.cfg.Now().Unix() >= sess.Expiry {
		return nil
	}
	// A deleted user's session ends with them: their grants are revoked, and a cookie minted
	// before the deletion must not consent to new ones.
	if _, err := s.cfg.Store.GetUser(r.Context(), sess.UserID); err != nil {
		return nil
	}
	return &sess
}

// csrfToken returns the browser's CSRF token, setting the cookie if it has none.
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, s.cookie(csrfCookie, tok, 0))
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
