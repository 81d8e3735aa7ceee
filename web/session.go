package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
)

// Cookie names. With an https issuer they carry the __Host- prefix, which browsers accept only
// for a cookie that is Secure, has Path=/ and no Domain: no other site (a sibling subdomain, a
// plain-http origin) can set or shadow it.
const (
	sessionCookie = "rescind_session"
	csrfCookie    = "rescind_csrf"
	deviceCookie  = "rescind_device"
	hostPrefix    = "__Host-"
)

// Defaults of SessionsConfig.
const (
	DefaultSessionIdle = 12 * time.Hour
	DefaultSessionMax  = 30 * 24 * time.Hour
)

// touchEvery is how often a session's use is written to the store: its last-seen time and
// idle expiry move at most once a minute.
const touchEvery = time.Minute

// SessionsConfig configures Sessions. Fields marked required must be set.
type SessionsConfig struct {
	// Store holds the sessions and users. Required.
	Store rescind.Store
	// Committer ends sessions (writing their records) and knows the sessions ended on any
	// instance. Required.
	Committer *revocation.Committer
	// Box derives the keys of CSRF tokens bound to sessions (every instance sharing the secrets
	// key derives the same). Required.
	Box *secret.Box
	// Secure makes cookies Secure with the __Host- prefix (an https issuer).
	Secure bool
	// Idle ends a session not used for this long. If zero, DefaultSessionIdle.
	Idle time.Duration
	// Max is a session's absolute lifetime, fixed at sign-in. If zero, DefaultSessionMax.
	Max time.Duration
	// CacheTTL is how long a session read from the store is used before it is read again (an
	// ended session is refused at once whatever the cache holds). If zero, one minute.
	CacheTTL time.Duration
	// CacheSize bounds the sessions held in memory. If zero, 10,000.
	CacheSize int
	// Logger receives store errors. If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Sessions keeps who is signed in on which browser, on the server: the browser's cookie holds
// a random 256-bit secret, the store only its SHA-256 with the session's user, times, user
// agent and address. Every request that uses a session looks it up: in a bounded memory cache
// (read again from the store after CacheTTL, or when it seems idle-expired), then in the
// revocation state, which holds every session ended on any instance until the session's own
// expiry, so an ended session is refused at once whatever the cache holds. It is safe for
// concurrent use.
type Sessions struct {
	cfg     SessionsConfig
	csrfKey []byte

	mu    sync.Mutex
	cache map[string]*cachedSession // by the hash of the cookie's secret
}

// cachedSession is a session and its user, as read from the store at fetched.
type cachedSession struct {
	sess    rescind.Session
	user    rescind.User
	fetched time.Time
}

// NewSessions returns Sessions.
func NewSessions(cfg SessionsConfig) (*Sessions, error) {
	if cfg.Store == nil || cfg.Committer == nil || cfg.Box == nil {
		return nil, errors.New("web: SessionsConfig is missing a required field")
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultSessionIdle
	}
	if cfg.Max <= 0 {
		cfg.Max = DefaultSessionMax
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = time.Minute
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key, err := cfg.Box.DeriveKey("session csrf", sha256.Size)
	if err != nil {
		return nil, err
	}
	return &Sessions{cfg: cfg, csrfKey: key, cache: make(map[string]*cachedSession)}, nil
}

// cookieName returns name with the __Host- prefix on an https issuer.
func (m *Sessions) cookieName(name string) string {
	if m.cfg.Secure {
		return hostPrefix + name
	}
	return name
}

// cookie returns a cookie of this site: HttpOnly, SameSite=Lax, Path=/, and Secure (with the
// __Host- prefix) on an https issuer.
func (m *Sessions) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: m.cookieName(name), Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: m.cfg.Secure,
		SameSite: http.SameSiteLaxMode}
}

// hashSecret is what the store keeps of a cookie's secret.
func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// secretOf returns the session secret the browser that sent r holds, if it has one of the
// right shape (43 characters of base64url: 256 bits).
func (m *Sessions) secretOf(r *http.Request) (string, bool) {
	c, err := r.Cookie(m.cookieName(sessionCookie))
	if err != nil || len(c.Value) != 43 {
		return "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil {
		return "", false
	}
	return c.Value, true
}

// Start signs user in on the browser that sent r: a new session, whose cookie w carries. A
// session this browser held before is ended (the person signs in afresh, perhaps as someone
// else). It returns rescind.ErrUserChanged if the user's sessions were ended since user was
// read (a new password, signing out everywhere): the sign-in must be tried again.
func (m *Sessions) Start(w http.ResponseWriter, r *http.Request, user rescind.User) (rescind.Session, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return rescind.Session{}, fmt.Errorf("web: session secret: %w", err)
	}
	text := base64.RawURLEncoding.EncodeToString(b)
	if old, oldUser, ok := m.Current(r); ok {
		if old.UserID == user.ID && user.Epoch == oldUser.Epoch {
			// The same person authenticating again (OpenID Connect's prompt=login, max_age):
			// the session keeps its id, which its apps know as sid, and gets a new secret and
			// authentication time.
			now := m.cfg.Now().UTC()
			idle := earliest(now.Add(m.cfg.Idle), old.ExpiresAt)
			err := m.cfg.Store.ReauthenticateSession(r.Context(), old.ID, old.Hash, hashSecret(text), now, idle)
			if err == nil {
				m.forget(old.Hash)
				old.Hash, old.AuthTime, old.LastSeenAt, old.IdleExpiresAt = hashSecret(text), now, now, idle
				http.SetCookie(w, m.cookie(sessionCookie, text, int(old.ExpiresAt.Sub(now)/time.Second)))
				return old, nil
			}
			if !errors.Is(err, rescind.ErrNotFound) {
				return rescind.Session{}, fmt.Errorf("web: re-authenticating session: %w", err)
			}
			// It ended meanwhile: a new one, below.
		} else if _, err := m.End(r.Context(), rescind.SessionFilter{UserID: old.UserID, ID: old.ID}, "user:"+oldUser.Username, "signed in again"); err != nil {
			return rescind.Session{}, err
		}
	}
	id, err := secret.NewID()
	if err != nil {
		return rescind.Session{}, fmt.Errorf("web: session id: %w", err)
	}
	now := m.cfg.Now().UTC()
	exp := now.Add(m.cfg.Max)
	sess := rescind.Session{ID: id, Hash: hashSecret(text), UserID: user.ID, UserEpoch: user.Epoch, CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: earliest(now.Add(m.cfg.Idle), exp), ExpiresAt: exp, UserAgent: clip(r.UserAgent(), 256), Address: hostOf(r.RemoteAddr),
		AuthTime: now}
	if err := m.cfg.Store.CreateSession(r.Context(), sess); err != nil {
		return rescind.Session{}, fmt.Errorf("web: starting session: %w", err)
	}
	http.SetCookie(w, m.cookie(sessionCookie, text, int(m.cfg.Max/time.Second)))
	return sess, nil
}

// Current returns the session of the browser that sent r and its user (without the password
// hash); false if there is none: no cookie, an unknown, ended or expired session, or a user
// that is gone.
func (m *Sessions) Current(r *http.Request) (rescind.Session, rescind.User, bool) {
	text, ok := m.secretOf(r)
	if !ok {
		return rescind.Session{}, rescind.User{}, false
	}
	hash := hashSecret(text)
	now := m.cfg.Now()
	m.mu.Lock()
	e := m.cache[hash]
	m.mu.Unlock()
	if e == nil || now.Sub(e.fetched) >= m.cfg.CacheTTL || !m.active(e.sess, now) {
		// Not cached, cached long enough, or idle by the cached copy (another instance may have
		// seen it used since): read it again.
		var err error
		if e, err = m.load(r.Context(), hash, now); err != nil {
			return rescind.Session{}, rescind.User{}, false
		}
	}
	// After the read: an end committed before it is in the state by now, wherever it happened.
	if m.cfg.Committer.SessionEnded(e.sess.ID) || !m.active(e.sess, now) {
		m.forget(hash)
		return rescind.Session{}, rescind.User{}, false
	}
	if now.Sub(e.sess.LastSeenAt) >= touchEvery {
		m.touch(r.Context(), hash, e, now)
	}
	return e.sess, e.user, true
}

// active reports whether sess may be used at now: within its stored expiries, and used within
// the idle timeout configured now (a shorter --session-idle applies at once to sessions whose
// stored idle expiry was set under a longer one).
func (m *Sessions) active(sess rescind.Session, now time.Time) bool {
	return sess.Active(now) && now.Before(sess.LastSeenAt.Add(m.cfg.Idle))
}

// load reads the session whose secret hashes to hash, and its user, into the cache.
func (m *Sessions) load(ctx context.Context, hash string, now time.Time) (*cachedSession, error) {
	sess, err := m.cfg.Store.GetSession(ctx, hash)
	if err == nil {
		var u rescind.User
		if u, err = m.cfg.Store.GetUser(ctx, sess.UserID); err == nil {
			u.PasswordHash = ""
			e := &cachedSession{sess: sess, user: u, fetched: now}
			m.mu.Lock()
			if len(m.cache) >= m.cfg.CacheSize {
				m.evictLocked(now)
			}
			m.cache[hash] = e
			m.mu.Unlock()
			return e, nil
		}
	}
	m.forget(hash)
	if !errors.Is(err, rescind.ErrNotFound) {
		m.cfg.Logger.ErrorContext(ctx, "reading session", "err", err)
	}
	return nil, err
}

// evictLocked makes room in the full cache: entries due for a new read go first, then any
// (map order is random).
func (m *Sessions) evictLocked(now time.Time) {
	for k, e := range m.cache {
		if now.Sub(e.fetched) >= m.cfg.CacheTTL {
			delete(m.cache, k)
		}
	}
	for k := range m.cache {
		if len(m.cache) < m.cfg.CacheSize {
			break
		}
		delete(m.cache, k)
	}
}

func (m *Sessions) forget(hash string) {
	m.mu.Lock()
	delete(m.cache, hash)
	m.mu.Unlock()
}

// touch records a use of the session at now: its last-seen time, and its idle expiry moved to
// the idle timeout past now (never past its absolute expiry).
func (m *Sessions) touch(ctx context.Context, hash string, e *cachedSession, now time.Time) {
	idle := earliest(now.Add(m.cfg.Idle), e.sess.ExpiresAt)
	if err := m.cfg.Store.TouchSession(ctx, e.sess.ID, now, idle); err != nil {
		if errors.Is(err, rescind.ErrNotFound) {
			// Ended (or purged) meanwhile: the copy must not outlive the stored idle expiry its
			// end's record was bounded by. The next use reads it again and finds nothing.
			m.forget(hash)
			return
		}
		m.cfg.Logger.WarnContext(ctx, "recording a session's use", "err", err)
		return
	}
	next := *e
	next.sess.LastSeenAt, next.sess.IdleExpiresAt = now, idle
	m.mu.Lock()
	if m.cache[hash] == e {
		m.cache[hash] = &next
	}
	m.mu.Unlock()
}

// List returns the user's active sessions, oldest first.
func (m *Sessions) List(ctx context.Context, userID string) ([]rescind.Session, error) {
	return m.cfg.Store.ListSessions(ctx, userID, m.cfg.Now())
}

// End ends the sessions matching f, writing an audit entry for each with actor and reason,
// and returns how many it ended. When it returns, every instance will refuse them (this one
// already does).
func (m *Sessions) End(ctx context.Context, f rescind.SessionFilter, actor, reason string) (int, error) {
	revs, err := m.cfg.Committer.EndSessions(ctx, f, rescind.Revocation{RevokedAt: m.cfg.Now(), Actor: actor, Reason: reason})
	return len(revs), err
}

// ClearCookie tells the browser to drop its session cookie.
func (m *Sessions) ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, m.cookie(sessionCookie, "", -1))
}

// csrfToken returns the CSRF token of a session: an HMAC of its id under a key derived from the
// secrets key, so only this server (any instance of it) can make one, and it is worthless for
// another session or once the session has ended.
func (m *Sessions) csrfToken(sess rescind.Session) string {
	mac := hmac.New(sha256.New, m.csrfKey)
	// The secret's hash too: a re-authentication (same id, new secret) makes the tokens of the
	// forms shown before it worthless, as a new session does.
	mac.Write([]byte(sess.ID + "|" + sess.Hash))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// hostOf returns the host of a request's RemoteAddr (the client's address behind trusted
// proxies).
func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// clip returns s as valid UTF-8 of at most n bytes.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// SignedIn returns the person signed in on the browser that sent r, as stored (without the
// password hash); false if no one is.
func (s *Server) SignedIn(r *http.Request) (rescind.User, bool) {
	_, u, ok := s.sessions.Current(r)
	return u, ok
}

// Session returns the session of the browser that sent r; false if it has none.
func (s *Server) Session(r *http.Request) (rescind.Session, bool) {
	sess, _, ok := s.sessions.Current(r)
	return sess, ok
}

// csrfToken returns the CSRF token the forms of the page answering r carry: the token bound to
// the browser's session if it has one, else a random token also set as a cookie (double submit,
// for the sign-in form of a browser without a session).
func (s *Server) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if sess, _, ok := s.sessions.Current(r); ok {
		return s.sessions.csrfToken(sess)
	}
	if c, err := r.Cookie(s.sessions.cookieName(csrfCookie)); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, s.sessions.cookie(csrfCookie, tok, 0))
	return tok
}

// checkCSRF reports whether a parsed POST carries the CSRF token of the browser's session (of
// its cookie, if it has no session).
func (s *Server) checkCSRF(r *http.Request) bool {
	got, err := formValue(r, "csrf_token")
	if err != nil || got == "" {
		return false
	}
	if sess, _, ok := s.sessions.Current(r); ok {
		return secret.Equal(got, s.sessions.csrfToken(sess))
	}
	c, err := r.Cookie(s.sessions.cookieName(csrfCookie))
	return err == nil && c.Value != "" && secret.Equal(got, c.Value)
}
