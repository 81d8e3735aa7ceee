package resource

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/rescind/rescind/client"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/token"
)

// Config configures a Middleware.
type Config struct {
	// Issuer is the authorization server's issuer URL; its metadata is discovered. Required.
	Issuer string
	// Audience must be among a JWT's aud values. If empty, the issuer (the audience a Rescind
	// server gives tokens requested without an RFC 8707 resource).
	Audience string
	// RequiredScopes must all be in the token's scope.
	RequiredScopes []string
	// ScopesSupported are the scopes published in the protected resource metadata (RFC 9728
	// §2, MetadataHandler). If empty, RequiredScopes.
	ScopesSupported []string
	// ResourceMetadataURL is where the protected resource metadata is published, named in
	// every 401 answer (RFC 9728 §5.1). If empty, the URL RFC 9728 §3.1 builds from Audience,
	// when it is an http(s) URL: Audience https://api.example/photos publishes it at
	// https://api.example/.well-known/oauth-protected-resource/photos (MetadataPath).
	ResourceMetadataURL string
	// ResourceName is the resource_name of the metadata, if any.
	ResourceName string
	// ClientID and ClientSecret are the resource server's own client credentials, used for
	// introspection of opaque tokens and for the event stream. At a Rescind server the client
	// must be registered as a resource server for Audience (client create --resource-server
	// --resource AUDIENCE): any other client learns only about its own tokens.
	ClientID, ClientSecret string
	// Push subscribes to the revocation event stream (needs the client credentials).
	Push bool
	// FailOpen accepts tokens when their status list cannot be refreshed past its ttl, and
	// JWTs when the JWKS cannot be refreshed past its max-age (plus 30 seconds). By default
	// such tokens are refused: a key the server retired would otherwise stay trusted for as
	// long as the JWKS cannot be fetched.
	FailOpen bool
	// BaseURL is this resource server's URL as clients address it (scheme://host[:port], and
	// the path prefix a proxy strips, if any): a DPoP proof's htu must be it followed by the
	// request's path (RFC 9449 §4.3). Required to accept DPoP-bound tokens: if empty, they are
	// all refused (ErrNoBaseURL), since the request's Host header, which the sender chooses,
	// cannot say which URL a proof must name. Bearer tokens need no BaseURL.
	BaseURL string
	// DPoPNonces, if set, makes the DPoP proofs of bound tokens carry a nonce it issued (RFC
	// 9449 §9): a proof without one gets 401 use_dpop_nonce with a DPoP-Nonce header.
	DPoPNonces *dpop.Nonces
	// DPoPReplay remembers the DPoP proofs seen, so none is accepted twice (RFC 9449 §11.1). If
	// nil, one in memory: enough for one process; processes behind one load balancer should
	// share one.
	DPoPReplay dpop.ReplayCache
	// IntrospectionCacheTTL bounds how long a positive introspection answer is reused. If
	// zero, 10 seconds.
	IntrospectionCacheTTL time.Duration
	// ClockSkew is how far ahead of this server's clock the authorization server's may be: a
	// JWT whose nbf is up to ClockSkew in the future is accepted. If zero, one minute (the
	// server's default --clock-skew). Expiry gets no leeway: the server keeps a revocation in
	// force (status list, push, introspection) until the token's exp plus its --clock-skew, so
	// this server's clock may lag the server's by up to that much and still refuse every
	// revoked token until it expires here.
	ClockSkew time.Duration
	// HTTPClient makes every request. If nil, a client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives errors. If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Claims are a verified token's claims.
type Claims struct {
	Subject  string
	ClientID string
	Scopes   []string
	Audience []string
	ID       string
	GrantID  string
	IssuedAt time.Time
	Expiry   time.Time
	// JWT is true for a locally verified JWT, false for an introspected opaque token.
	JWT bool
	// JKT is the thumbprint of the DPoP key the token is bound to (cnf.jkt, RFC 9449 §6); empty
	// for a bearer token.
	JKT string
}

type claimsKey struct{}

// ClaimsFrom returns the claims the middleware verified for this request.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Middleware checks access tokens. Create it with New; stop its background work with Close.
type Middleware struct {
	cfg    Config
	md     *client.Metadata
	intro  *client.Client
	cancel context.CancelFunc
	done   chan struct{}
	dpop   *dpop.Verifier
	// audienceDefaulted says the Audience is the issuer because none was configured: the
	// resource server's own URL is then unknown, and so is where its metadata is.
	audienceDefaulted bool

	keysMu    sync.RWMutex
	keys      map[string]jose.JSONWebKey
	refetched time.Time // last refetch caused by an unknown kid
	keysUntil time.Time // when the fetched JWKS goes stale (its Cache-Control max-age)
	refilling bool      // a background refetch of a stale JWKS is under way
	// keysFetched is when the JWKS held was fetched, keysMaxAge its max-age: past both plus
	// jwksGrace, it is too old to trust (see freshKeys).
	keysFetched time.Time
	keysMaxAge  time.Duration
	syncMu      sync.Mutex // serializes the refetches of a JWKS too old to trust
	syncTried   time.Time  // the last of those; guarded by syncMu
	// retiredKids are the keys the server retired (push events): refused even if a JWKS still
	// lists them (one fetched from an instance that has not heard yet). Kid -> event exp.
	retiredKids map[string]int64

	listsMu sync.Mutex
	lists   map[string]*cachedList

	pushMu       sync.RWMutex
	pushLive     bool
	revokedJTI   map[string]int64
	revokedGrant map[string]int64
	clientCut    map[string]int64 // client id -> tokens issued at or before (Unix s) are revoked
	revokedEntry map[string]int64 // "uri#idx"

	introMu    sync.Mutex
	introCache map[[32]byte]introEntry
	// introGen counts the clearings of introCache (events that may have revoked what it holds):
	// an answer is cached only if none happened while it was asked for.
	introGen uint64
	// hookIntrospected, if set (by tests), runs between an introspection's answer and its caching.
	hookIntrospected func()

	// verified caches JWTs whose signature, issuer and audience were checked: what cannot
	// change while their key stays. Expiry, revocation and the key itself (still published, not
	// retired) are checked on every request. An entry is used only under the key generation it
	// was verified in (keysGen), so that a verification in flight when a key is withdrawn or
	// retired cannot put its token back into the cache.
	verifiedMu sync.RWMutex
	verified   map[[32]byte]verifiedJWT
	// keysGen counts the changes that withdraw or replace a key (a JWKS that lost or changed
	// one, a retirement); it is read before a key is looked up and compared before a cached
	// verification is used.
	keysGen atomic.Uint64
	// hookVerified, if set (by tests), runs between a JWT's signature check and its caching.
	hookVerified func()
	ownOnce      sync.Once // warns once that the event stream carries only the client's own tokens
	noBaseURL    sync.Once // warns once that a DPoP-bound token came without BaseURL
}

type cachedList struct {
	mu      sync.Mutex
	raw     []byte
	bits    int
	fetched time.Time
	ttl     time.Duration
	err     error     // the last fetch's error, if it failed
	failed  time.Time // when it failed
}

// listRetryInterval is how long a status list that could not be fetched is not asked for again.
const listRetryInterval = 2 * time.Second

type introEntry struct {
	claims *Claims
	until  time.Time
}

// New discovers the issuer, fetches its JWKS and, with Push, starts the event subscription.
func New(ctx context.Context, cfg Config) (*Middleware, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("resource: Issuer is required")
	}
	audienceSet := cfg.Audience != ""
	if !audienceSet {
		cfg.Audience = cfg.Issuer
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IntrospectionCacheTTL <= 0 {
		cfg.IntrospectionCacheTTL = 10 * time.Second
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = time.Minute
	}
	var err error
	if cfg.BaseURL, err = checkBaseURL(cfg.BaseURL); err != nil {
		return nil, err
	}
	md, err := client.Discover(ctx, cfg.Issuer, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	m := &Middleware{cfg: cfg, md: md, lists: map[string]*cachedList{}, revokedJTI: map[string]int64{},
		revokedGrant: map[string]int64{}, clientCut: map[string]int64{}, revokedEntry: map[string]int64{},
		introCache: map[[32]byte]introEntry{}, verified: map[[32]byte]verifiedJWT{}, done: make(chan struct{}),
		retiredKids: map[string]int64{}, dpop: newDPoPVerifier(cfg)}
	m.audienceDefaulted = !audienceSet
	m.intro = &client.Client{Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, HTTPClient: cfg.HTTPClient}
	if md.JWKSURI != "" {
		if err := m.fetchKeys(ctx); err != nil {
			return nil, err
		}
	}
	bg, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if cfg.Push {
		if cfg.ClientID == "" {
			cancel()
			return nil, errors.New("resource: Push needs ClientID and ClientSecret")
		}
		go m.subscribe(bg)
	} else {
		close(m.done)
	}
	return m, nil
}

// Close stops the event subscription.
func (m *Middleware) Close() {
	m.cancel()
	<-m.done
}

// StalenessBound is how long a revoked JWT may still be accepted: zero while the push
// subscription is live (refused as the event arrives), else the longest status list ttl seen
// (one minute before any list was fetched).
func (m *Middleware) StalenessBound() time.Duration {
	m.pushMu.RLock()
	live := m.pushLive
	m.pushMu.RUnlock()
	if live {
		return 0
	}
	m.listsMu.Lock()
	defer m.listsMu.Unlock()
	bound := time.Duration(0)
	for _, l := range m.lists {
		l.mu.Lock()
		bound = max(bound, l.ttl)
		l.mu.Unlock()
	}
	if bound == 0 {
		bound = time.Minute
	}
	return bound
}

// Handler wraps next: requests without a valid token (VerifyRequest: Bearer, or DPoP with its
// proof) get 401 (or 403 for a missing scope).
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := m.VerifyRequest(r)
		if err != nil {
			m.refuse(w, err)
			return
		}
		m.withNonce(w, c)
		for _, s := range m.cfg.RequiredScopes {
			if !slices.Contains(c.Scopes, s) {
				w.Header().Set("WWW-Authenticate", m.challenge(scheme(c), "insufficient_scope", "", true))
				http.Error(w, "insufficient scope", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

func quote(s string) string { return strings.NewReplacer(`"`, "'", `\`, "/").Replace(s) }

// Errors Verify returns.
var (
	ErrRevoked     = errors.New("the token was revoked")
	ErrExpired     = errors.New("the token has expired")
	ErrStatusStale = errors.New("the token's revocation status cannot be checked")
)

// Why Verify refuses a token that is not (or no longer) a valid access token for this resource
// server. They are distinct values so that tests can tell which check refused a token.
var (
	errTooLong     = errors.New("the token is too long")
	errNotJWS      = errors.New("the token is not a valid JWS")
	errTyp         = errors.New("the token is not an access token (typ)")
	errUnknownKey  = errors.New("the token is signed by an unknown key")
	errAlgMismatch = errors.New("the token's algorithm does not match its key")
	errSignature   = errors.New("the token's signature is invalid")
	errClaims      = errors.New("the token's claims are malformed")
	errIssuer      = errors.New("the token is from another issuer")
	errAudience    = errors.New("the token is not for this audience")
	errNoExp       = errors.New("the token has no exp")
	errNoJTI       = errors.New("the token has no jti")
	errNotYetValid = errors.New("the token is not valid yet")
	errInactive    = errors.New("the token is not active")
	errRetiredKey  = errors.New("the token was sealed under a retired key")
	errKeysStale   = fmt.Errorf("%w: the issuer's keys (JWKS) cannot be refreshed", ErrStatusStale)
)

// maxTokenLen bounds the tokens the middleware looks at.
const maxTokenLen = 8192

// Verify checks a token presented as a bearer token (RFC 6750) and returns its claims. A
// DPoP-bound token is refused (ErrBoundAsBearer): it is valid only with a proof of its key, made
// for the request it comes with, which only VerifyRequest (and so Handler) can check.
func (m *Middleware) Verify(ctx context.Context, text string) (*Claims, error) {
	c, err := m.verifyToken(ctx, text)
	if err != nil {
		return nil, err
	}
	if c.JKT != "" {
		return nil, ErrBoundAsBearer
	}
	return c, nil
}

// verifyToken checks a token alone and returns its claims: a DPoP-bound one (Claims.JKT set)
// is valid only with a proof of its key, which the caller must check.
func (m *Middleware) verifyToken(ctx context.Context, text string) (*Claims, error) {
	if len(text) > maxTokenLen {
		return nil, errTooLong
	}
	if token.LooksLikeJWT(text) {
		return m.verifyJWT(ctx, text)
	}
	return m.introspect(ctx, text)
}

type jwtClaims struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      client.Audience `json:"aud"`
	Exp      *int64          `json:"exp"`
	Nbf      *int64          `json:"nbf"`
	Iat      int64           `json:"iat"`
	Jti      string          `json:"jti"`
	ClientID string          `json:"client_id"`
	Scope    string          `json:"scope"`
	Gid      string          `json:"gid"`
	Status   *token.Status   `json:"status"`
	// boundTo is the thumbprint of the DPoP key of cnf.jkt (confirmation), or "".
	boundTo string
}

// verifiedJWT is an entry of the verified cache: the claims, the key that verified them, and the
// key generation (Middleware.keysGen) read before that key was looked up.
type verifiedJWT struct {
	claims *jwtClaims
	kid    string
	gen    uint64
}

var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.RS256, jose.PS256}

func (m *Middleware) verifyJWT(ctx context.Context, text string) (*Claims, error) {
	if err := m.freshKeys(ctx); err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(text))
	gen := m.keysGen.Load() // before the key is looked up: a later withdrawal makes the entry stale
	m.verifiedMu.RLock()
	e, ok := m.verified[h]
	m.verifiedMu.RUnlock()
	if !ok || e.gen != gen {
		c, kid, err := m.verifySignature(ctx, text)
		if err != nil {
			return nil, err
		}
		if m.hookVerified != nil {
			m.hookVerified()
		}
		e = verifiedJWT{claims: c, kid: kid, gen: gen}
		m.verifiedMu.Lock()
		if len(m.verified) >= 100000 {
			clear(m.verified)
		}
		m.verified[h] = e
		m.verifiedMu.Unlock()
	}
	// The key may have been withdrawn or retired since it verified the token (even while this
	// request verified it): it must still be one the middleware accepts.
	if err := m.keyUsable(e.kid); err != nil {
		return nil, err
	}
	return m.checkJWT(ctx, e.claims)
}

// jwksGrace is how long past its max-age a JWKS that cannot be fetched again is still trusted
// (unless FailOpen, which trusts it for good): time for the background refetches to succeed.
const jwksGrace = 30 * time.Second

// freshKeys makes sure the JWKS held can be trusted. Past its max-age it is fetched again in the
// background while requests go on with it; past its max-age plus jwksGrace it is fetched again
// before the token is checked (at most once a second), and if that fails the token is refused
// (errKeysStale) unless FailOpen: a key the server retired meanwhile, which left its JWKS, would
// otherwise be accepted for as long as the JWKS cannot be reached, and a token made with a stolen
// key need not carry a status claim.
func (m *Middleware) freshKeys(ctx context.Context) error {
	m.refreshStaleKeys()
	if m.cfg.FailOpen || m.md.JWKSURI == "" || !m.keysTooOld() {
		return nil
	}
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	if !m.keysTooOld() { // another request refetched it meanwhile
		return nil
	}
	now := m.cfg.Now()
	if now.Sub(m.syncTried) < time.Second && !now.Before(m.syncTried) {
		return errKeysStale
	}
	m.syncTried = now
	if err := m.fetchKeys(ctx); err != nil {
		m.cfg.Logger.Warn("the JWKS is past its max-age and cannot be fetched: refusing JWTs", "err", err)
		return errKeysStale
	}
	return nil
}

// keysTooOld reports whether the JWKS held is older than its max-age plus jwksGrace.
func (m *Middleware) keysTooOld() bool {
	now := m.cfg.Now()
	m.keysMu.RLock()
	defer m.keysMu.RUnlock()
	return !now.Before(m.keysFetched.Add(m.keysMaxAge + jwksGrace))
}

// keyUsable reports (nil) whether kid is a key the middleware accepts now: in the JWKS it holds,
// and not announced retired.
func (m *Middleware) keyUsable(kid string) error {
	m.keysMu.RLock()
	defer m.keysMu.RUnlock()
	if _, retired := m.retiredKids[kid]; retired {
		return errUnknownKey
	}
	if _, ok := m.keys[kid]; !ok {
		return errUnknownKey
	}
	return nil
}

// verifySignature checks what cannot change about a JWT: its form, type, signature (with the
// algorithm pinned to the key), issuer, audience and that it has exp and jti.
// It returns the claims and the kid of the key that verified them.
func (m *Middleware) verifySignature(ctx context.Context, text string) (*jwtClaims, string, error) {
	jws, err := token.ParseJWS(text)
	if err != nil || !slices.Contains(allowedAlgs, jose.SignatureAlgorithm(jws.Alg)) { // "none" and HMAC are not in the list
		return nil, "", errNotJWS
	}
	if typ := jws.Typ; !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, "", errTyp
	}
	key, ok := m.key(ctx, jws.Kid)
	if !ok {
		return nil, "", errUnknownKey
	}
	if key.Algorithm != jws.Alg { // the key says which algorithm it is for
		return nil, "", errAlgMismatch
	}
	if !jws.Verify(key.Algorithm, key.Key) {
		return nil, "", errSignature
	}
	payload := jws.Payload
	var c jwtClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, "", errClaims
	}
	if c.boundTo, err = confirmation(payload); err != nil {
		return nil, "", err
	}
	switch {
	case c.Iss != m.md.Issuer:
		return nil, "", errIssuer
	case m.cfg.Audience == "" || !slices.Contains(c.Aud, m.cfg.Audience):
		return nil, "", errAudience
	case c.Exp == nil:
		return nil, "", errNoExp
	case c.Jti == "":
		return nil, "", errNoJTI
	}
	return &c, jws.Kid, nil
}

// checkJWT checks what changes with time: expiry (without leeway), not-before (with the clock
// skew), and revocation (push, then the status list).
func (m *Middleware) checkJWT(ctx context.Context, c *jwtClaims) (*Claims, error) {
	now := m.cfg.Now()
	switch {
	case now.Unix() >= *c.Exp:
		return nil, ErrExpired
	case c.Nbf != nil && now.Add(m.cfg.ClockSkew).Unix() < *c.Nbf:
		return nil, errNotYetValid
	}
	if m.pushedRevoked(c.Jti, c.Gid, c.ClientID, c.Iat, c.Status) {
		return nil, ErrRevoked
	}
	if c.Status != nil {
		st, err := m.status(ctx, c.Status.StatusList)
		if err != nil {
			if !m.cfg.FailOpen {
				return nil, ErrStatusStale
			}
		} else if st != token.StatusValid {
			return nil, ErrRevoked
		}
	}
	return &Claims{Subject: c.Sub, ClientID: c.ClientID, Scopes: strings.Fields(c.Scope), Audience: c.Aud, ID: c.Jti, GrantID: c.Gid,
		IssuedAt: time.Unix(c.Iat, 0), Expiry: time.Unix(*c.Exp, 0), JWT: true, JKT: c.jkt()}, nil
}

// key returns the JWKS key kid. An unknown kid triggers one refetch of the JWKS; refetches
// happen at most once a second, since anyone can send a token naming an unknown kid. A kid the
// server announced retired is never returned.
func (m *Middleware) key(ctx context.Context, kid string) (jose.JSONWebKey, bool) {
	m.keysMu.Lock()
	if _, retired := m.retiredKids[kid]; retired {
		m.keysMu.Unlock()
		return jose.JSONWebKey{}, false
	}
	k, ok := m.keys[kid]
	now := m.cfg.Now()
	if ok || m.md.JWKSURI == "" || now.Sub(m.refetched) < time.Second {
		m.keysMu.Unlock()
		return k, ok
	}
	m.refetched = now
	m.keysMu.Unlock()
	if err := m.fetchKeys(ctx); err != nil {
		m.cfg.Logger.Warn("refetching JWKS", "err", err)
	}
	m.keysMu.RLock()
	defer m.keysMu.RUnlock()
	k, ok = m.keys[kid]
	return k, ok
}

// jwksMaxAge bounds how long a fetched JWKS is used before it is fetched again: its
// Cache-Control max-age, within [1 s, 1 h]; 5 minutes if it has none.
func jwksMaxAge(h http.Header) time.Duration {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(strings.ToLower(d)), "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return min(max(time.Duration(n)*time.Second, time.Second), time.Hour)
			}
		}
	}
	return 5 * time.Minute
}

// refreshStaleKeys starts a background refetch of the JWKS once its max-age has passed, so that a
// retired key leaves this middleware within the max-age even without push. Requests go on with
// the keys held meanwhile (a failed refetch is retried a second later).
func (m *Middleware) refreshStaleKeys() {
	now := m.cfg.Now()
	m.keysMu.Lock()
	if m.md.JWKSURI == "" || m.refilling || now.Before(m.keysUntil) {
		m.keysMu.Unlock()
		return
	}
	m.refilling = true
	m.keysMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.fetchKeys(ctx); err != nil {
			m.cfg.Logger.Warn("refreshing the JWKS", "err", err)
			m.keysMu.Lock()
			m.keysUntil = m.cfg.Now().Add(time.Second)
			m.keysMu.Unlock()
		}
		m.keysMu.Lock()
		m.refilling = false
		m.keysMu.Unlock()
	}()
}

func (m *Middleware) fetchKeys(ctx context.Context) error {
	b, hdr, err := m.getWithHeader(ctx, m.md.JWKSURI, "application/jwk-set+json, application/json")
	if err != nil {
		return fmt.Errorf("resource: fetching JWKS: %w", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return fmt.Errorf("resource: JWKS: %w", err)
	}
	keys := map[string]jose.JSONWebKey{}
	for _, k := range set.Keys {
		if k.IsPublic() && k.Valid() && k.Algorithm != "" && (k.Use == "" || k.Use == "sig") {
			keys[k.KeyID] = k
		}
	}
	m.keysMu.Lock()
	for kid := range m.retiredKids {
		delete(keys, kid)
	}
	m.keysFetched, m.keysMaxAge = m.cfg.Now(), jwksMaxAge(hdr)
	m.keysUntil = m.keysFetched.Add(m.keysMaxAge)
	withdrawn := false
	for kid, had := range m.keys {
		if k, ok := keys[kid]; !ok || !sameKey(had, k) {
			withdrawn = true
		}
	}
	m.keys = keys
	if withdrawn {
		// What a withdrawn (or replaced) key verified must be verified again, including what a
		// request verifying right now is about to cache.
		m.keysGen.Add(1)
	}
	m.keysMu.Unlock()
	if withdrawn {
		m.verifiedMu.Lock()
		clear(m.verified)
		m.verifiedMu.Unlock()
	}
	return nil
}

// sameKey reports whether a and b are the same public key for the same algorithm.
func sameKey(a, b jose.JSONWebKey) bool {
	ta, errA := a.Thumbprint(crypto.SHA256)
	tb, errB := b.Thumbprint(crypto.SHA256)
	return errA == nil && errB == nil && bytes.Equal(ta, tb) && a.Algorithm == b.Algorithm
}

func (m *Middleware) get(ctx context.Context, u, accept string) ([]byte, error) {
	b, _, err := m.getWithHeader(ctx, u, accept)
	return b, err
}

func (m *Middleware) getWithHeader(ctx context.Context, u, accept string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", accept)
	res, err := m.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s: HTTP %d", u, res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	return b, res.Header, err
}

// status returns the token's status from its list, refreshing the list when older than its ttl.
func (m *Middleware) status(ctx context.Context, ref token.StatusListRef) (byte, error) {
	if !strings.HasPrefix(ref.URI, "https://") && !strings.HasPrefix(ref.URI, "http://") {
		return 0, errors.New("bad status list uri")
	}
	m.listsMu.Lock()
	l := m.lists[ref.URI]
	if l == nil {
		if len(m.lists) > 10000 {
			clear(m.lists)
		}
		l = &cachedList{}
		m.lists[ref.URI] = l
	}
	m.listsMu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	now := m.cfg.Now()
	if l.raw == nil || now.Sub(l.fetched) >= l.ttl {
		// A list that could not be fetched is not asked for again for a moment: every request
		// naming it would otherwise hit the server.
		if l.err != nil && now.Sub(l.failed) < listRetryInterval {
			return 0, l.err
		}
		if err := m.fetchList(ctx, ref.URI, l); err != nil {
			m.cfg.Logger.Warn("refreshing status list", "uri", ref.URI, "err", err)
			l.err, l.failed = err, now
			if l.raw == nil || now.Sub(l.fetched) >= l.ttl {
				return 0, err // nothing fresh enough: the caller fails closed
			}
		} else {
			l.err = nil
		}
	}
	st, ok := token.StatusAt(l.raw, l.bits, ref.Idx)
	if !ok {
		return 0, errors.New("status index outside the list")
	}
	return st, nil
}

// fetchList fetches and verifies a Status List Token (§8) into l.
func (m *Middleware) fetchList(ctx context.Context, uri string, l *cachedList) error {
	b, err := m.get(ctx, uri, "application/statuslist+jwt")
	if err != nil {
		return err
	}
	jws, err := jose.ParseSigned(string(b), allowedAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return errors.New("status list is not a valid JWS")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "statuslist+jwt") && !strings.EqualFold(typ, "application/statuslist+jwt") {
		return errors.New("status list has the wrong typ")
	}
	key, ok := m.key(ctx, h.KeyID)
	if !ok || key.Algorithm != h.Algorithm {
		return errors.New("status list signed by an unknown key")
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return errors.New("status list signature is invalid")
	}
	var c token.StatusListClaims
	if err := json.Unmarshal(payload, &c); err != nil || c.Subject != uri {
		return errors.New("status list claims are malformed or name another list")
	}
	now := m.cfg.Now()
	if c.Expiry != 0 && now.Unix() >= c.Expiry {
		return errors.New("status list has expired")
	}
	raw, err := token.DecodeStatusList(c.StatusList.Lst)
	if err != nil {
		return err
	}
	if c.StatusList.Bits != 1 && c.StatusList.Bits != 2 && c.StatusList.Bits != 4 && c.StatusList.Bits != 8 {
		return errors.New("status list has invalid bits")
	}
	ttl := time.Duration(c.TTL) * time.Second
	if ttl <= 0 || ttl > time.Hour {
		ttl = time.Minute
	}
	l.raw, l.bits, l.fetched, l.ttl = raw, c.StatusList.Bits, now, ttl
	return nil
}

// introspect checks an opaque token at the introspection endpoint, with a short positive cache.
// A token sealed under a key the server announced retired is refused without asking.
func (m *Middleware) introspect(ctx context.Context, text string) (*Claims, error) {
	if m.sealRetired(text) {
		return nil, errRetiredKey
	}
	if notAccessToken(text) {
		return nil, errNotAccessToken
	}
	h := sha256.Sum256([]byte(text))
	now := m.cfg.Now()
	m.introMu.Lock()
	e, ok := m.introCache[h]
	gen := m.introGen // an event after this makes the answer below too old to cache
	m.introMu.Unlock()
	if ok && now.Before(e.until) {
		if m.pushedRevoked(e.claims.ID, "", e.claims.ClientID, e.claims.IssuedAt.Unix(), nil) {
			return nil, ErrRevoked
		}
		return e.claims, nil
	}
	in, err := m.intro.Introspect(ctx, text, "access_token")
	if err != nil {
		return nil, fmt.Errorf("introspection failed: %w", err)
	}
	if !in.Active {
		return nil, errInactive
	}
	if err := introspectedAccessToken(in); err != nil {
		return nil, err
	}
	if len(in.Aud) > 0 && m.cfg.Audience != "" && !slices.Contains(in.Aud, m.cfg.Audience) {
		return nil, errAudience
	}
	c := &Claims{Subject: in.Sub, ClientID: in.ClientID, Scopes: strings.Fields(in.Scope), Audience: in.Aud, ID: in.Jti,
		IssuedAt: time.Unix(in.Iat, 0), Expiry: time.Unix(in.Exp, 0)}
	if c.JKT, err = confirmation(in.Raw); err != nil {
		return nil, err
	}
	if m.hookIntrospected != nil {
		m.hookIntrospected()
	}
	// Events that arrived while the server answered apply to this answer too.
	if m.sealRetired(text) {
		return nil, errRetiredKey
	}
	if m.pushedRevoked(c.ID, "", c.ClientID, c.IssuedAt.Unix(), nil) {
		return nil, ErrRevoked
	}
	until := now.Add(m.cfg.IntrospectionCacheTTL)
	if in.Exp > 0 && c.Expiry.Before(until) {
		until = c.Expiry
	}
	m.introMu.Lock()
	if m.introGen == gen { // else an event (a grant revoked, a key retired) may have made it stale
		if len(m.introCache) > 100000 {
			clear(m.introCache)
		}
		m.introCache[h] = introEntry{claims: c, until: until}
	}
	m.introMu.Unlock()
	return c, nil
}

// sealRetired reports whether text is a Rescind opaque token sealed under a key the server
// announced retired (the key id is readable in the token, without opening it).
func (m *Middleware) sealRetired(text string) bool {
	kid, err := token.KeyID(text)
	if err != nil {
		return false
	}
	m.keysMu.RLock()
	defer m.keysMu.RUnlock()
	_, retired := m.retiredKids[token.SealKey{ID: kid}.KeyIDString()]
	return retired
}

// clearIntrospections drops every cached introspection answer, and keeps the answers asked for
// meanwhile from being cached.
func (m *Middleware) clearIntrospections() {
	m.introMu.Lock()
	clear(m.introCache)
	m.introGen++
	m.introMu.Unlock()
}
