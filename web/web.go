package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
)

//go:embed templates/*.html
var templateFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// Authenticator checks a person's credentials. The local user store implements it; an external
// identity provider can replace it.
type Authenticator interface {
	// Authenticate returns the user with these credentials, or ErrBadCredentials.
	Authenticate(ctx context.Context, username, password string) (rescind.User, error)
}

// ErrBadCredentials is returned by an Authenticator for a wrong username or password.
var ErrBadCredentials = errors.New("web: wrong username or password")

// LocalUsers authenticates against the users in the store (argon2id password hashes).
type LocalUsers struct {
	Store rescind.Store
	// Gate bounds the password checks running at once (share the process's one Gate). Required.
	Gate *secret.Gate
}

// Authenticate implements Authenticator. An unknown username costs as much as a wrong password
// (a dummy hash is checked), so timing does not reveal which usernames exist. It returns
// secret.ErrBusy when too many checks are under way.
func (l LocalUsers) Authenticate(ctx context.Context, username, password string) (rescind.User, error) {
	u, err := l.Store.GetUserByUsername(ctx, username)
	if errors.Is(err, rescind.ErrNotFound) {
		if gerr := l.Gate.VerifyNone(ctx, password); gerr != nil {
			return u, gerr
		}
		return u, ErrBadCredentials
	}
	if err != nil {
		return u, err
	}
	ok, err := l.Gate.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return u, err
	}
	if !ok {
		return u, ErrBadCredentials
	}
	return u, nil
}

// Config configures a Server. Fields marked required must be set.
type Config struct {
	// Issuer is the server's issuer URL; https makes cookies Secure. Required.
	Issuer string
	// Store holds users, grants and codes. Required.
	Store rescind.Store
	// Clients looks up clients. Required.
	Clients *clientreg.Registry
	// Committer revokes grants. Required.
	Committer *revocation.Committer
	// Box derives the key of CSRF tokens bound to sessions. Required.
	Box *secret.Box
	// Users authenticates people. If nil, LocalUsers on Store (and Gate).
	Users Authenticator
	// Gate bounds the password checks running at once; share the process's one Gate (client
	// secrets use it too). If nil, the Server makes its own.
	Gate *secret.Gate
	// Limiter, if set, rate-limits failed logins per source network (an IPv6 /64 is one) and
	// per username there.
	Limiter *ratelimit.Limiter
	// UserLimiter, if set, rate-limits failed logins per username, wherever they come from: give
	// it a slower rate than Limiter's. A browser the person signed in on before (it carries a
	// device cookie, a MAC of the user and their DeviceEpoch) is charged to a bucket of its own
	// instead, while that has tokens, so guesses from elsewhere cannot lock the person out of
	// their own browsers; its failures are charged to the username's bucket too, so a copied
	// device cookie adds no more than its own bucket to anyone's guesses.
	UserLimiter *ratelimit.Limiter
	// SignInLimiter, if set, bounds successful sign-ins per person: each takes a token from the
	// bucket of the user's id (never given back), and while it is empty the right password gets
	// a 429 and no session. A sign-in on a browser that holds a session ends that session, whose
	// record every instance keeps until the session's idle expiry: this bounds the records one
	// person can make. Only someone who knows the password can empty it.
	SignInLimiter *ratelimit.Limiter
	// Sessions keeps who is signed in on which browser. If nil, the Server makes its own on
	// Store, Committer and Box, with SessionIdle and SessionMax.
	Sessions *Sessions
	// SessionIdle ends a session not used for this long. If zero, DefaultSessionIdle.
	SessionIdle time.Duration
	// SessionMax is a session's absolute lifetime, fixed at sign-in. If zero, DefaultSessionMax.
	SessionMax time.Duration
	// Logger receives errors and security events. If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Server serves the pages. It implements oauth.Pages: the server's route table (oauth
// routes.go) mounts its Handle methods, and the authorization endpoint calls the others.
type Server struct {
	cfg       Config
	sessions  *Sessions
	deviceKey []byte
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" || cfg.Store == nil || cfg.Clients == nil || cfg.Committer == nil || cfg.Box == nil {
		return nil, errors.New("web: Config is missing a required field")
	}
	if cfg.Gate == nil {
		cfg.Gate = secret.NewGate(secret.GateConfig{Running: max(1, runtime.GOMAXPROCS(0))})
	}
	if cfg.Users == nil {
		cfg.Users = LocalUsers{Store: cfg.Store, Gate: cfg.Gate}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	deviceKey, err := cfg.Box.DeriveKey("login device", sha256.Size)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, sessions: cfg.Sessions, deviceKey: deviceKey}
	if s.sessions == nil {
		var err error
		s.sessions, err = NewSessions(SessionsConfig{Store: cfg.Store, Committer: cfg.Committer, Box: cfg.Box,
			Secure: strings.HasPrefix(cfg.Issuer, "https://"), Idle: cfg.SessionIdle, Max: cfg.SessionMax, Logger: cfg.Logger, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) render(w http.ResponseWriter, status int, name string, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := templates.ExecuteTemplate(w, name, data); err != nil {
		s.cfg.Logger.Error("rendering page", "page", name, "err", err)
	}
}

func (s *Server) renderError(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, "error.html", map[string]any{"Title": "Error", "Error": msg})
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.cfg.Logger.ErrorContext(r.Context(), what, "err", err)
	s.renderError(w, http.StatusInternalServerError, "The server could not complete this request. Please try again.")
}

// formValue returns a form parameter that must appear at most once.
func formValue(r *http.Request, name string) (string, error) {
	vs := r.PostForm[name]
	if len(vs) > 1 {
		return "", fmt.Errorf("parameter %s is included more than once", name)
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

// parsePost parses a form POST of at most 64 KiB.
func parsePost(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	return r.ParseForm()
}
