package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientip"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/redirect"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/token"
)

// deletionMargin extends a deleted client's cut-off past the deletion, besides the clock skew, to
// cover the commit and the tokens an instance that has not yet learnt of it may still issue (it
// learns by notification, or when its cached copy of the client expires: a minute at most). See
// deletionCutoff.
const deletionMargin = 10 * time.Minute

// MaxTokenTTL bounds a client's access token lifetime (rescind.MaxAccessTokenTTL).
const MaxTokenTTL = rescind.MaxAccessTokenTTL

// Config configures a Server. All fields but Logger, Now, Token and HashParams are required.
type Config struct {
	Store   rescind.Store
	Clients *clientreg.Registry
	Revoked *revocation.State
	// Committer writes revocations (bulk revocation).
	Committer *revocation.Committer
	// Keys rotates, retires and lists the sealing and signing keys.
	Keys *keys.Manager
	// Signer, if set, is the JWT signer: clients may then get JWT access tokens.
	Signer *token.Signer
	// TokenTTL maps a client's configured lifetime (zero: unset) to the one its tokens get, for
	// display. No revocation record is sized from it.
	TokenTTL func(time.Duration) time.Duration
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Token, if set, is the bearer token required by the handler returned by Handler(true).
	Token string
	// Limiter, if set, rate-limits failed authentications to Handler(true) per source address:
	// while an address's bucket is empty, its requests get 429 with Retry-After unchecked.
	Limiter *ratelimit.Limiter
	// Backup, if set, writes a consistent copy of the database to a new file at path and returns
	// its size; it must fail with an error matching os.ErrExist if the file exists. If nil
	// (PostgreSQL), backups are refused with a pointer to pg_dump.
	Backup func(ctx context.Context, path string) (int64, error)
	// AllowLoopbackReceivers lets clients register a backchannel_logout_uri on a loopback
	// address (the outbox delivers there: --outbox-allow-loopback, for development).
	AllowLoopbackReceivers bool
	// HashParams are the argon2id parameters for new client secrets. If zero, secret.DefaultParams.
	HashParams secret.Params
	// ClockSkew is the largest difference between the clocks of the instances (--clock-skew):
	// client cut-offs are placed past it, so that they cover the tokens an instance whose clock
	// is ahead issued before them. If zero, one minute.
	ClockSkew time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// Server serves the admin API.
type Server struct {
	cfg Config
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.HashParams == (secret.Params{}) {
		cfg.HashParams = secret.DefaultParams
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg}
}

// Handler returns the API's handler. With requireToken, every request must carry the bearer
// token from Config.Token (and none is accepted if it is empty). A known path asked with
// another method is a 405 with Allow; an unknown path a 404; both as an ErrorResponse.
func (s *Server) Handler(requireToken bool) http.Handler {
	mux := http.NewServeMux()
	allow := map[string][]string{} // path -> methods routed
	route := func(pattern string, h http.Handler) {
		method, path, _ := strings.Cut(pattern, " ")
		allow[path] = append(allow[path], method)
		mux.Handle(pattern, h)
	}
	route("POST /admin/v1/clients", http.HandlerFunc(s.handleCreateClient))
	route("GET /admin/v1/clients", http.HandlerFunc(s.handleListClients))
	route("GET /admin/v1/clients/{id}", http.HandlerFunc(s.handleGetClient))
	route("DELETE /admin/v1/clients/{id}", http.HandlerFunc(s.handleDeleteClient))
	route("PATCH /admin/v1/clients/{id}", http.HandlerFunc(s.handleUpdateClient))
	route("POST /admin/v1/clients/{id}/rotate-secret", http.HandlerFunc(s.handleRotateSecret))
	route("GET /admin/v1/keys", http.HandlerFunc(s.handleListKeys))
	route("POST /admin/v1/keys/rotate", http.HandlerFunc(s.handleRotateKeys))
	route("POST /admin/v1/keys/{kid}/retire", http.HandlerFunc(s.handleRetireKey))
	route("POST /admin/v1/users", http.HandlerFunc(s.handleCreateUser))
	route("GET /admin/v1/users", http.HandlerFunc(s.handleListUsers))
	route("DELETE /admin/v1/users/{username}", http.HandlerFunc(s.handleDeleteUser))
	route("PATCH /admin/v1/users/{username}", http.HandlerFunc(s.handleUpdateUser))
	route("GET /admin/v1/users/{username}/sessions", http.HandlerFunc(s.handleUserSessions))
	route("POST /admin/v1/users/{username}/logout", http.HandlerFunc(s.handleLogoutUser))
	route("PUT /admin/v1/users/{username}/password", http.HandlerFunc(s.handleSetPassword))
	route("POST /admin/v1/revoke-all", http.HandlerFunc(s.handleRevokeAll))
	route("GET /admin/v1/audit", http.HandlerFunc(s.handleAudit))
	route("POST /admin/v1/registration-tokens", http.HandlerFunc(s.handleCreateRegistrationToken))
	route("GET /admin/v1/registration-tokens", http.HandlerFunc(s.handleListRegistrationTokens))
	route("DELETE /admin/v1/registration-tokens/{id}", http.HandlerFunc(s.handleDeleteRegistrationToken))
	route("GET /admin/v1/ssf/streams", http.HandlerFunc(s.handleListSSFStreams))
	route("DELETE /admin/v1/ssf/streams/{id}", http.HandlerFunc(s.handleDeleteSSFStream))
	if requireToken {
		route("POST /admin/v1/backup", http.HandlerFunc(s.handleBackupRefused))
	} else {
		route("POST /admin/v1/backup", http.HandlerFunc(s.handleBackup))
	}
	route("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	for path, methods := range allow {
		allowed := strings.Join(slices.Sorted(slices.Values(methods)), ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allowed)
			writeErr(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not served here; use "+allowed)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	if !requireToken {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := "admin-addr:" + clientip.Network(r.RemoteAddr) // an IPv6 /64 is one party
		var res *ratelimit.Reservation
		if s.cfg.Limiter != nil {
			// The token is reserved before the check, so concurrent guesses cannot outnumber
			// the bucket. While limited, even the right token is refused unchecked: answering
			// it would tell a guesser which guess was right.
			var ok bool
			var retry time.Duration
			if res, ok, retry = s.cfg.Limiter.Reserve(key); !ok {
				s.cfg.Logger.WarnContext(r.Context(), "security: admin authentication rate limited", "remote", r.RemoteAddr)
				w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry/time.Second))))
				writeErr(w, http.StatusTooManyRequests, "slow_down", "too many failed admin authentications; retry later")
				return
			}
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || s.cfg.Token == "" || !secret.Equal(got, s.cfg.Token) {
			s.cfg.Logger.WarnContext(r.Context(), "security: failed admin authentication", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="rescind-admin"`)
			writeErr(w, http.StatusUnauthorized, "unauthorized", "a valid admin token is required")
			return
		}
		res.Refund()
		mux.ServeHTTP(w, r)
	})
}

// MetricsHandler serves the Prometheus metrics of gatherer at GET /metrics and nothing else
// (404), without authentication: for a listener of its own (--metrics-addr) that a scraper may
// reach without holding the admin token.
func MetricsHandler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, "not_found", "only GET /metrics is served here")
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, ErrorResponse{Error: code, Description: desc})
}

func (s *Server) handleCreateClient(w http.ResponseWriter, r *http.Request) {
	var req CreateClientRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the body must be a JSON client: "+err.Error())
		return
	}
	c, plain, err := s.newClient(req)
	if err != nil {
		writeErr(w, http.StatusBadRequest, metadataErrorCode(err), err.Error())
		return
	}
	err = s.cfg.Store.CreateClient(r.Context(), c)
	// The server's view of every client at once (clientreg.Snapshot: the origins CORS allows,
	// scopes_supported) includes the new one from its next request, not within SnapshotTTL.
	if s.cfg.Clients != nil {
		s.cfg.Clients.Invalidate(c.ID)
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "creating client", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the client could not be stored")
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "client created", "client_id", c.ID, "client_name", c.Name)
	info := infoOf(c, s.cfg.TokenTTL(c.TokenTTL))
	info.ClientSecret = plain
	writeJSON(w, http.StatusCreated, info)
}

// metadataErrorCode is the RFC 7591 §3.2.2 error code for a refused client registration or
// change: invalid_redirect_uri for a redirect URI, invalid_client_metadata for anything else.
func metadataErrorCode(err error) string {
	if _, ok := errors.AsType[*redirect.Error](err); ok {
		return "invalid_redirect_uri"
	}
	return "invalid_client_metadata"
}

// newClient validates req and returns the client to store and its plaintext secret.
func (s *Server) newClient(req CreateClientRequest) (rescind.Client, string, error) {
	name, err := clientName(req.Name)
	if err != nil {
		return rescind.Client{}, "", err
	}
	gts := req.GrantTypes
	switch {
	case len(gts) > 0:
	case req.Public:
		gts = []string{rescind.GrantAuthorizationCode, rescind.GrantRefreshToken}
	case len(req.RedirectURIs) > 0:
		gts = []string{rescind.GrantAuthorizationCode, rescind.GrantRefreshToken, rescind.GrantClientCredentials}
	default:
		gts = []string{rescind.GrantClientCredentials}
	}
	var grantTypes []string
	for _, gt := range gts {
		switch gt {
		case rescind.GrantClientCredentials, rescind.GrantAuthorizationCode, rescind.GrantRefreshToken:
		default:
			return rescind.Client{}, "", fmt.Errorf("unknown grant type %q", gt)
		}
		if !slices.Contains(grantTypes, gt) {
			grantTypes = append(grantTypes, gt)
		}
	}
	if req.Public && slices.Contains(grantTypes, rescind.GrantClientCredentials) {
		return rescind.Client{}, "", errors.New("a public client cannot use client_credentials (RFC 6749 §4.4)")
	}
	if req.Public && req.Secret != "" {
		return rescind.Client{}, "", errors.New("a public client has no secret")
	}
	if req.Public && req.AllowPlainPKCE {
		// Its verifier would be the challenge, seen in the authorization request's URL.
		return rescind.Client{}, "", errors.New(`a public client must use the S256 PKCE method: "plain" is for confidential clients (RFC 7636 §4.2)`)
	}
	scopes, err := clientScopes(req.Scope)
	if err != nil {
		return rescind.Client{}, "", err
	}
	if err := redirect.ValidateAll(req.RedirectURIs, req.AllowInsecureRedirect); err != nil {
		return rescind.Client{}, "", err
	}
	resources, err := ValidateResources(req.ResourceServer, req.Resources)
	if err != nil {
		return rescind.Client{}, "", err
	}
	allowed, err := ValidateAllowedResources(req.AllowedResources)
	if err != nil {
		return rescind.Client{}, "", err
	}
	if req.Public && req.ResourceServer {
		return rescind.Client{}, "", errors.New("a resource server must be a confidential client: it authenticates to introspect (RFC 7662 §2.1)")
	}
	ttl, err := clientTokenTTL(req.TokenTTL)
	if err != nil {
		return rescind.Client{}, "", err
	}
	id, err := secret.NewID()
	if err != nil {
		return rescind.Client{}, "", err
	}
	switch req.TokenFormat {
	case "", rescind.TokenFormatOpaque, rescind.TokenFormatJWT:
	default:
		return rescind.Client{}, "", fmt.Errorf("token_format must be opaque or jwt")
	}
	if req.TokenFormat == rescind.TokenFormatJWT && s.cfg.Signer == nil {
		return rescind.Client{}, "", errors.New("this server does not issue JWT access tokens")
	}
	c := rescind.Client{ID: id, Name: name, Public: req.Public, GrantTypes: grantTypes, Scopes: scopes,
		RedirectURIs: req.RedirectURIs, TokenTTL: ttl, AllowPlainPKCE: req.AllowPlainPKCE, TokenFormat: req.TokenFormat,
		ResourceServer: req.ResourceServer, Resources: resources, AllowInsecureRedirect: req.AllowInsecureRedirect,
		AllowedResources: allowed, CreatedAt: s.cfg.Now().UTC(), RequireDPoP: req.RequireDPoP, FirstParty: req.FirstParty}
	if err := applyOIDC(&c, req.OIDC, s.cfg.AllowLoopbackReceivers); err != nil {
		return rescind.Client{}, "", err
	}
	plain := ""
	if !req.Public {
		plain = req.Secret
		if plain == "" {
			if plain, err = secret.Generate(); err != nil {
				return rescind.Client{}, "", err
			}
		}
		if c.SecretHash, err = secret.Hash(plain, s.cfg.HashParams); err != nil {
			return rescind.Client{}, "", err
		}
	}
	return c, plain, nil
}

// clientName validates a client_name.
func clientName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 || !utf8.ValidString(name) {
		return "", errors.New("client_name is required (at most 200 bytes of UTF-8)")
	}
	return name, nil
}

// clientScopes parses the space-separated scopes a client may be granted (RFC 6749 §3.3).
func clientScopes(scope string) ([]string, error) {
	var scopes []string
	for _, sc := range strings.Fields(scope) {
		if !rescind.ValidScopeToken(sc) {
			return nil, fmt.Errorf("scope %q is not a valid scope-token (RFC 6749 §3.3)", sc)
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return scopes, nil
}

// clientTokenTTL validates a token_ttl in seconds (zero: the server default).
func clientTokenTTL(secs int64) (time.Duration, error) {
	ttl := time.Duration(secs) * time.Second
	if secs < 0 || secs > int64(MaxTokenTTL/time.Second) {
		return 0, fmt.Errorf("token_ttl must be between 1 second and %s (0: the server default)", MaxTokenTTL)
	}
	return ttl, nil
}

func (s *Server) handleListClients(w http.ResponseWriter, r *http.Request) {
	cs, err := s.cfg.Store.ListClients(r.Context())
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "listing clients", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the clients could not be read")
		return
	}
	out := make([]ClientInfo, 0, len(cs))
	for _, c := range cs {
		out = append(out, infoOf(c, s.cfg.TokenTTL(c.TokenTTL)))
	}
	writeJSON(w, http.StatusOK, out)
}

// MaxResources bounds how many resources a resource-server client may register.
const MaxResources = 100

// ValidateResources checks the resources of a resource-server client and returns them without
// repeats: each an absolute URI without a fragment (RFC 8707 §2), and only for a resource server.
func ValidateResources(resourceServer bool, resources []string) ([]string, error) {
	if len(resources) > 0 && !resourceServer {
		return nil, errors.New("resources are registered for a resource server: add resource_server (--resource-server)")
	}
	if len(resources) > MaxResources {
		return nil, fmt.Errorf("at most %d resources", MaxResources)
	}
	var out []string
	for _, r := range resources {
		if !rescind.ValidResource(r) {
			return nil, fmt.Errorf("resource %q must be an absolute URI without a fragment (RFC 8707 §2)", r)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// ValidateAllowedResources checks the resources a client may ask tokens for (RFC 8707) and
// returns them without repeats: each an absolute URI without a fragment.
func ValidateAllowedResources(resources []string) ([]string, error) {
	if len(resources) > MaxResources {
		return nil, fmt.Errorf("at most %d allowed resources", MaxResources)
	}
	var out []string
	for _, r := range resources {
		if !rescind.ValidResource(r) {
			return nil, fmt.Errorf("allowed resource %q must be an absolute URI without a fragment (RFC 8707 §2)", r)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// found answers a failed lookup of what ("client", "user"): 404 if it does not exist, a logged
// 500 otherwise. It reports whether the lookup succeeded.
func (s *Server) found(w http.ResponseWriter, r *http.Request, err error, what string) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, rescind.ErrNotFound):
		writeErr(w, http.StatusNotFound, "not_found", "no such "+what)
	default:
		s.cfg.Logger.ErrorContext(r.Context(), "reading "+what, "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the "+what+" could not be read")
	}
	return false
}

func (s *Server) handleGetClient(w http.ResponseWriter, r *http.Request) {
	c, err := s.cfg.Store.GetClient(r.Context(), r.PathValue("id"))
	if !s.found(w, r, err, "client") {
		return
	}
	writeJSON(w, http.StatusOK, infoOf(c, s.cfg.TokenTTL(c.TokenTTL)))
}

// handleDeleteClient deletes a client and, in the same transaction, revokes every token it was
// issued: the revocation record outlives the longest token the client can hold.
func (s *Server) handleDeleteClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.DeleteClient(r.Context(), id, "admin", "client deleted")
	if errors.Is(err, rescind.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "not_found", "no such client")
		return
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "deleting client", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the client could not be deleted")
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "client deleted; its tokens are revoked", "client_id", id)
	w.WriteHeader(http.StatusNoContent)
}

// DeleteClient deletes client id and, in the same transaction, revokes every token it was
// issued and every grant it holds, audited as actor's for reason; when it returns nil the
// revocation is durable and in force on this instance. It is the one path of client deletion:
// the admin API's, and a dynamically registered client's own (RFC 7592). Returns an error
// wrapping rescind.ErrNotFound if there is no such client.
func (s *Server) DeleteClient(ctx context.Context, id, actor, reason string) error {
	if _, err := s.cfg.Store.GetClient(ctx, id); err != nil {
		return err
	}
	// The record revokes every token the client is issued until it expires. Every access token
	// lives at most rescind.MaxAccessTokenTTL, whatever was configured when it was issued, so
	// the record outlives every token issued before the deletion, and any token a stale
	// instance issues while the deletion propagates, whatever its clock (deletionCutoff).
	// Nothing in it comes from the configuration of the moment.
	now := s.cfg.Now()
	until := s.deletionCutoff(now)
	rev := rescind.Revocation{Kind: rescind.RevokeClient, Key: id, ClientID: id, RevokedAt: until, ExpiresAt: until,
		Actor: actor, Reason: reason}
	revs, err := s.cfg.Store.DeleteClient(ctx, id, now, rev)
	if err != nil {
		return err
	}
	s.cfg.Committer.Apply(revs...)
	// The cut-off kills every token carrying the client's id, grant tokens included; the
	// grants and their refresh tokens were revoked in the same transaction, and their tokens'
	// status list entries flipped.
	s.cfg.Clients.Invalidate(id)
	return nil
}

// handleBackup writes a consistent copy of the SQLite database to a new file named by the
// request, on the server's machine.
func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request) {
	var req BackupRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the body must be JSON with a path: "+err.Error())
		return
	}
	if !filepath.IsAbs(req.Path) {
		writeErr(w, http.StatusBadRequest, "invalid_request", "path must be an absolute file name on the server's machine")
		return
	}
	if s.cfg.Backup == nil {
		writeErr(w, http.StatusNotImplemented, "not_supported",
			"this server's database is PostgreSQL: back it up with pg_dump (see the README, \"Backup and restore\")")
		return
	}
	size, err := s.cfg.Backup(r.Context(), req.Path)
	switch {
	case errors.Is(err, os.ErrExist):
		writeErr(w, http.StatusConflict, "already_exists", req.Path+" exists: a backup never overwrites a file; choose a new name")
		return
	case err != nil:
		s.cfg.Logger.ErrorContext(r.Context(), "backup", "path", req.Path, "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the backup failed: "+errText(err))
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "backup written", "path", req.Path, "bytes", size)
	writeJSON(w, http.StatusOK, BackupResponse{Path: req.Path, Bytes: size})
}

// errText is the part of a backup error worth showing the operator: the file system's
// complaint (no such directory, permission denied), without the store's wrapping.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Error()
	}
	return "see the server log"
}

// handleBackupRefused answers a backup requested over TCP: it would let a remote caller create
// files anywhere the server may write.
func (s *Server) handleBackupRefused(w http.ResponseWriter, r *http.Request) {
	writeErr(w, http.StatusForbidden, "forbidden",
		"backups are taken over the admin socket only: run rescind backup on the server's machine")
}
