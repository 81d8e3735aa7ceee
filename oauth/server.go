package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/internal/clientdoc"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/metrics"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/token"
)

// Config configures a Server. Fields marked required must be set; the others have defaults.
type Config struct {
	// Issuer is the issuer identifier (RFC 8414 §2): an https (or, for development, http) URL
	// without query or fragment. Required.
	Issuer string
	// Clients authenticates and looks up clients. Required.
	Clients *clientreg.Registry
	// Keys seals and opens opaque access tokens. Required.
	Keys *token.Keyring
	// Revoked is the in-memory revocation state. Required.
	Revoked *revocation.State
	// Committer durably writes revocations. Required.
	Committer *revocation.Committer
	// Metrics records request metrics. Required.
	Metrics *metrics.Metrics
	// Store holds codes, refresh tokens and grants. Required.
	Store rescind.Store
	// Pages are the browser-facing pages (login, consent, account; package web). If nil, the
	// authorization endpoint and the pages are 404.
	Pages Pages
	// CodeTTL is the authorization code lifetime. If zero, 60 seconds.
	CodeTTL time.Duration
	// RefreshTokenTTL is the lifetime of refresh tokens. If zero, 30 days.
	RefreshTokenTTL time.Duration
	// Signer signs JWT access tokens and status lists; if nil, JWT access tokens are off.
	Signer *token.Signer
	// Statuses allocates status list entries for JWT access tokens. Required with Signer.
	Statuses *statuslist.Allocator
	// StatusListTTL is the ttl of published status lists. If zero, 60 seconds.
	StatusListTTL time.Duration
	// Feed is the event streams' shared reader of new revocation records; what commits
	// revocations (the committer, the coherence loop) calls its Notify, so it can be made before
	// the Server. If nil, the Server makes its own, woken by NotifyRevocations.
	Feed *revocation.Feed
	// Limiter, if set, rate-limits failed client authentications (429 with Retry-After).
	Limiter *ratelimit.Limiter
	// RevokeGrantWithAccessToken makes revoking an access token of a grant revoke the whole
	// grant. By default only that access token dies.
	RevokeGrantWithAccessToken bool
	// AccessTokenTTL is the default access token lifetime. If zero, one hour.
	AccessTokenTTL time.Duration
	// Registration is the mode of dynamic client registration (RFC 7591) at /oauth2/register:
	// RegisterOff (also when empty), RegisterWithToken or RegisterOpen (register.go).
	Registration string
	// RegistrationLimiter bounds the open registrations of each source address. If nil, 20 an
	// hour.
	RegistrationLimiter *ratelimit.Limiter
	// HashParams are the argon2id parameters of the secrets of dynamically registered clients.
	// If zero, secret.DefaultParams.
	HashParams secret.Params
	// DeleteClient deletes client id and revokes everything it holds, as the admin API's
	// deletion does (the one path of client deletion): RFC 7592 deregistration calls it.
	// Required with Registration.
	DeleteClient func(ctx context.Context, id, actor, reason string) error
	// ScopesSupported, if set, are the scopes published as scopes_supported, and the only ones
	// a client that registers itself (RFC 7591, metadata document) may have. If empty, the
	// scopes of the operator's clients are published, and such clients may ask for any scope
	// (each person consents to what is asked).
	ScopesSupported []string
	// ClientDocuments, if set, resolves Client ID Metadata Documents: an https URL is then
	// accepted as a client_id (clientdoc.go).
	ClientDocuments *clientdoc.Resolver
	// DocumentLimiter bounds the metadata documents fetched for each source address (cached
	// ones are free). If nil, 20 at once and 10 a minute.
	DocumentLimiter *ratelimit.Limiter
	// AllowInsecureRedirect lets clients that register themselves (dynamically, or by metadata
	// document) have plain-http redirect URIs on hosts other than loopback: development only.
	AllowInsecureRedirect bool
	// SelfRegisteredTokenFormat is the access token format of clients that register themselves,
	// unless their registration names one: TokenFormatJWT (the default with a Signer: a
	// resource server an agent calls can check them without credentials of its own) or
	// TokenFormatOpaque (the default without one).
	SelfRegisteredTokenFormat string
	// MaxBodyBytes bounds request bodies. If zero, 64 KiB.
	MaxBodyBytes int64
	// RefreshKeys, if set, is called when a token names a key kid the keyring lacks (a key
	// rotated by another instance); it reports whether the keyring now holds it, and the token
	// is then opened again.
	RefreshKeys func(ctx context.Context, kid [4]byte) bool
	// DPoP checks the DPoP proofs of token requests (RFC 9449). Its replay cache must be shared
	// by every instance that serves the same clients. If nil, a verifier with an in-memory
	// replay cache and nonces under a random key: enough for one instance.
	DPoP *dpop.Verifier
	// DPoPNonce says when proofs must carry a server nonce: DPoPNonceOff, DPoPNonceAuto (the
	// default, also when empty) or DPoPNonceAlways. Unless off, DPoP must have Nonces.
	DPoPNonce string
	// RefreshSigningKeys, if set, is RefreshKeys for a JWT naming a signing key the signer lacks.
	RefreshSigningKeys func(ctx context.Context, kid string) bool
	// IDSigner signs ID tokens and logout tokens (OpenID Connect). If nil and Signer is set, the
	// Signer's key in force signs them.
	IDSigner IDSigner
	// Ready reports whether the server can serve (for /readyz). If nil, always ready.
	Ready func(context.Context) error
	// Logger receives errors and security events. If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// Routes are endpoints of other packages served with these (the Shared Signals
	// transmitter's, package ssf), added to the one route table.
	Routes []Route
}

// Route is an endpoint another package serves on the public listener: a ServeMux pattern
// ("POST /ssf/stream"), the endpoint's name in metrics, and its handler.
type Route struct {
	Pattern, Endpoint string
	Handler           http.HandlerFunc
}

// Server serves the OAuth 2.0 endpoints.
type Server struct {
	issuer          string
	clients         *clientreg.Registry
	keys            *token.Keyring
	revoked         *revocation.State
	committer       *revocation.Committer
	metrics         *metrics.Metrics
	store           rescind.Store
	pages           Pages
	codeTTL         time.Duration
	refreshTTL      time.Duration
	grantWithAccess bool
	signer          *token.Signer
	statuses        *statuslist.Allocator
	statusBase      string
	statusTTL       time.Duration
	listMu          sync.Mutex
	lists           map[string]renderedList
	knownLists      map[string]time.Time // status lists found in the store: id -> record expiry
	missingLists    map[string]time.Time // ids found to name no list: id -> when to look again
	feed            *revocation.Feed
	eventsMu        sync.Mutex
	encoded         map[int64][]byte // SSE text of recent records, by Seq
	limiter         *ratelimit.Limiter
	tokenTTL        time.Duration
	maxBody         int64
	ready           func(context.Context) error
	refresh         func(context.Context, [4]byte) bool
	refreshSigning  func(context.Context, string) bool
	log             *slog.Logger
	now             func() time.Time
	md              metadata // the metadata document but for its scopes (metadata.go)
	mdMu            sync.Mutex
	mdScopes        []string // the scopes of the document last rendered
	mdDoc           []byte
	registration    string
	regLimiter      *ratelimit.Limiter
	hashParams      secret.Params
	deleteClient    func(ctx context.Context, id, actor, reason string) error
	scopes          []string
	docs            *clientdoc.Resolver
	docLimiter      *ratelimit.Limiter
	insecureRedir   bool
	selfTokenFormat string
	dpop            *dpop.Verifier
	dpopNonce       string
	tokenURL        string
	idSigner        IDSigner
	routes          []Route
	jwts            *jwtCache // verified JWT access tokens
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Issuer == "" || cfg.Clients == nil || cfg.Keys == nil || cfg.Revoked == nil || cfg.Committer == nil || cfg.Metrics == nil || cfg.Store == nil {
		return nil, errors.New("oauth: Config is missing a required field")
	}
	s := &Server{
		issuer: strings.TrimSuffix(cfg.Issuer, "/"), clients: cfg.Clients, keys: cfg.Keys, revoked: cfg.Revoked,
		committer: cfg.Committer, metrics: cfg.Metrics, tokenTTL: cfg.AccessTokenTTL, maxBody: cfg.MaxBodyBytes,
		ready: cfg.Ready, refresh: cfg.RefreshKeys, refreshSigning: cfg.RefreshSigningKeys, log: cfg.Logger, now: cfg.Now,
		store: cfg.Store, pages: cfg.Pages, codeTTL: cfg.CodeTTL, refreshTTL: cfg.RefreshTokenTTL, grantWithAccess: cfg.RevokeGrantWithAccessToken,
		signer: cfg.Signer, statuses: cfg.Statuses, limiter: cfg.Limiter, statusTTL: cfg.StatusListTTL, lists: make(map[string]renderedList),
		knownLists: make(map[string]time.Time), missingLists: make(map[string]time.Time),
		encoded: make(map[int64][]byte),
		jwts:    newJWTCache(jwtCacheGeneration),
	}
	s.statusBase = s.issuer + "/oauth2/statuslists/"
	if s.idSigner = cfg.IDSigner; s.idSigner == nil && cfg.Signer != nil {
		s.idSigner = keySigner{s: cfg.Signer, now: func() time.Time {
			if cfg.Now != nil {
				return cfg.Now()
			}
			return time.Now()
		}}
	}
	s.tokenURL = s.issuer + "/oauth2/token"
	s.routes = cfg.Routes
	if s.dpopNonce = cfg.DPoPNonce; s.dpopNonce == "" {
		s.dpopNonce = DPoPNonceAuto
	}
	var err error
	if s.dpop, err = newDPoP(cfg); err != nil {
		return nil, err
	}
	if s.statusTTL <= 0 {
		s.statusTTL = time.Minute
	}
	if s.codeTTL <= 0 {
		s.codeTTL = time.Minute
	}
	if s.refreshTTL <= 0 {
		s.refreshTTL = 30 * 24 * time.Hour
	}
	if s.tokenTTL <= 0 {
		s.tokenTTL = time.Hour
	}
	if s.maxBody <= 0 {
		s.maxBody = 64 << 10
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.feed = cfg.Feed; s.feed == nil {
		s.feed = NewFeed(s.store, s.log, s.now)
	}
	switch cfg.Registration {
	case "", RegisterOff:
		s.registration = RegisterOff
	case RegisterWithToken, RegisterOpen:
		if cfg.DeleteClient == nil {
			return nil, errors.New("oauth: Registration needs DeleteClient")
		}
		s.registration = cfg.Registration
	default:
		return nil, fmt.Errorf("oauth: unknown registration mode %q", cfg.Registration)
	}
	s.regLimiter, s.hashParams, s.deleteClient = cfg.RegistrationLimiter, cfg.HashParams, cfg.DeleteClient
	if s.regLimiter == nil {
		s.regLimiter = ratelimit.New(ratelimit.Config{Burst: 20, PerHour: 20, Now: s.now})
	}
	if s.hashParams == (secret.Params{}) {
		s.hashParams = secret.DefaultParams
	}
	s.scopes, s.docs, s.docLimiter, s.insecureRedir = cfg.ScopesSupported, cfg.ClientDocuments, cfg.DocumentLimiter, cfg.AllowInsecureRedirect
	if s.docLimiter == nil {
		s.docLimiter = ratelimit.New(ratelimit.Config{Burst: 20, PerMinute: 10, Now: s.now})
	}
	switch s.selfTokenFormat = cfg.SelfRegisteredTokenFormat; s.selfTokenFormat {
	case "":
		s.selfTokenFormat = rescind.TokenFormatOpaque
		if s.signer != nil && s.statuses != nil {
			s.selfTokenFormat = rescind.TokenFormatJWT
		}
	case rescind.TokenFormatOpaque:
	case rescind.TokenFormatJWT:
		if s.signer == nil || s.statuses == nil {
			return nil, errors.New("oauth: SelfRegisteredTokenFormat jwt needs Signer and Statuses")
		}
	default:
		return nil, fmt.Errorf("oauth: unknown token format %q", cfg.SelfRegisteredTokenFormat)
	}
	s.md = s.buildMetadata()
	return s, nil
}

// TokenTTL returns the lifetime given to access tokens of client ttl (zero: the default),
// capped at rescind.MaxAccessTokenTTL whatever is configured: client-wide revocation records are
// sized from that cap.
func (s *Server) TokenTTL(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		ttl = s.tokenTTL
	}
	return min(ttl, rescind.MaxAccessTokenTTL)
}

// openToken opens an access token, reloading keys once if it names an unknown key.
func (s *Server) openToken(ctx context.Context, text string) (*token.Claims, error) {
	c, err := s.keys.Open(text)
	if errors.Is(err, token.ErrUnknownKey) && s.refresh != nil {
		if kid, kerr := token.KeyID(text); kerr == nil && s.refresh(ctx, kid) {
			c, err = s.keys.Open(text)
		}
	}
	return c, err
}

// withHeaders sets the headers every response carries.
func withHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic in a handler into a logged 500 in the protocol's format, so one bad
// request never takes the connection's goroutine (or a test) down silently.
func (s *Server) recoverPanics(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path, "panic", v)
				writeError(w, errServer)
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, errorf(ErrInvalidRequest, http.StatusMethodNotAllowed, "this endpoint accepts only "+allow))
	}
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, errorf("not_found", http.StatusNotFound, "no such endpoint"))
}

// NewFeed returns the shared reader of new revocation records for the event streams of one
// instance, limiting each client to MaxStreamsPerClient streams. now may be nil (time.Now).
func NewFeed(store rescind.Store, log *slog.Logger, now func() time.Time) *revocation.Feed {
	return revocation.NewFeed(revocation.FeedConfig{Store: store, MaxPerSubscriber: MaxStreamsPerClient, Logger: log, Now: now})
}
