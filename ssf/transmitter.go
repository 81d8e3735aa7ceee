package ssf

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/outbox"
	"github.com/rescind/rescind/internal/safehttp"
	"github.com/rescind/rescind/internal/secret"
)

// Scopes a receiver's access token must carry (SSF 1.0 §7.1.1, authorization_schemes
// urn:ietf:rfc:6749: a token from the client credentials grant).
const (
	// ScopeManage lets a receiver create, change and delete its streams, add and remove
	// subjects, ask for verification, and poll.
	ScopeManage = "ssf.manage"
	// ScopeRead lets a receiver read its streams and their status, and poll.
	ScopeRead = "ssf.read"
)

// Token is what a receiver's access token says of it.
type Token struct {
	// ClientID is the receiver: the owner of the streams it creates, and their SETs' aud.
	ClientID string
	// Scopes are the token's scopes.
	Scopes []string
	// ClientCredentials reports a token of the client credentials grant (RFC 6749 §4.4): its
	// subject is the client itself, no person's grant. Only those are accepted (SSF 1.0 §7.1.1,
	// authorization_schemes urn:ietf:rfc:6749).
	ClientCredentials bool
	// Audience is the token's audience (RFC 8707); only a token for the issuer alone is
	// accepted: one issued for another resource could be replayed by that resource.
	Audience []string
}

// Config configures a Transmitter. Fields marked required must be set.
type Config struct {
	// Issuer is the SETs' iss and the base of the endpoints. Required.
	Issuer string
	// Store holds streams, subjects and events. Required.
	Store rescind.Store
	// Box seals the Authorization header a receiver gives for its pushes. Required.
	Box *secret.Box
	// Sign signs a SET's claims with the header typ (the signing seam: the key in force).
	// Required.
	Sign func(claims any, typ string) (string, error)
	// KeyVerifies reports whether the key kid still verifies, at now, what it signed
	// (token.Signer.Verifies: held, not retired): a signed SET is reused (within setCacheTTL,
	// for a re-poll or a push retry) only while its key does, and signed again otherwise, so a
	// retired key never reaches a receiver. If nil, a cached SET is reused whatever its key.
	KeyVerifies func(kid string, now time.Time) bool
	// JWKSURI is where the SETs' keys are published. Required.
	JWKSURI string
	// Authenticate checks a bearer access token of the server's. Required.
	Authenticate func(ctx context.Context, text string) (Token, error)
	// Wake wakes this instance's outbox dispatcher after events were appended. May be nil.
	Wake func()
	// AllowLoopbackPush lets a push endpoint be on loopback (http or https): for development
	// and tests only (--ssf-allow-loopback-push).
	AllowLoopbackPush bool
	// MaxStreamsPerClient bounds the streams of one receiver. If zero, 10.
	MaxStreamsPerClient int
	// MaxSubjectsPerStream bounds the subjects of one stream. If zero, 10000.
	MaxSubjectsPerStream int
	// MaxBodyBytes bounds request bodies. If zero, 16 KiB.
	MaxBodyBytes int64
	// LongPoll is the longest a poll without returnImmediately waits for events. If zero, 25 s.
	LongPoll time.Duration
	// MinVerificationInterval is the least time between two verification requests of a stream
	// (SSF 1.0 §8.1.1 min_verification_interval). If zero, 5 s.
	MinVerificationInterval time.Duration
	// PushWindow is how long a push is retried. If zero, 3 days.
	PushWindow time.Duration
	// Logger receives errors. If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Transmitter is the Shared Signals transmitter: its HTTP endpoints and its outbox deliverers.
type Transmitter struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	polls pollLimiter
	sets  setCache
}

// New returns a Transmitter for cfg.
func New(cfg Config) (*Transmitter, error) {
	switch {
	case cfg.Issuer == "" || cfg.Store == nil || cfg.Box == nil || cfg.Sign == nil || cfg.Authenticate == nil:
		return nil, errors.New("ssf: Issuer, Store, Box, Sign and Authenticate are required")
	}
	if cfg.MaxStreamsPerClient <= 0 {
		cfg.MaxStreamsPerClient = 10
	}
	if cfg.MaxSubjectsPerStream <= 0 {
		cfg.MaxSubjectsPerStream = 10000
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 10
	}
	if cfg.LongPoll <= 0 {
		cfg.LongPoll = 25 * time.Second
	}
	if cfg.MinVerificationInterval <= 0 {
		cfg.MinVerificationInterval = 5 * time.Second
	}
	if cfg.PushWindow <= 0 {
		cfg.PushWindow = 72 * time.Hour
	}
	if cfg.JWKSURI == "" {
		cfg.JWKSURI = cfg.Issuer + "/.well-known/jwks.json"
	}
	t := &Transmitter{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if t.log == nil {
		t.log = slog.Default()
	}
	if t.now == nil {
		t.now = time.Now
	}
	return t, nil
}

// Paths of the endpoints, below the issuer.
const (
	PathConfiguration = "/.well-known/ssf-configuration"
	PathStream        = "/ssf/stream"
	PathStatus        = "/ssf/status"
	PathAddSubject    = "/ssf/subjects:add"
	PathRemoveSubject = "/ssf/subjects:remove"
	PathVerify        = "/ssf/verify"
	PathPoll          = "/ssf/poll/"
)

// Route is one endpoint: a ServeMux pattern, a name for metrics, and its handler.
type Route struct {
	Pattern, Endpoint string
	Handler           http.HandlerFunc
}

// Routes returns the transmitter's endpoints, for the server's one route table.
func (t *Transmitter) Routes() []Route {
	return []Route{
		{"GET " + PathConfiguration, "ssf_configuration", t.handleConfiguration},
		{"POST " + PathStream, "ssf_stream", t.handleCreateStream},
		{"GET " + PathStream, "ssf_stream", t.handleReadStream},
		{"PATCH " + PathStream, "ssf_stream", t.handleUpdateStream},
		{"PUT " + PathStream, "ssf_stream", t.handleReplaceStream},
		{"DELETE " + PathStream, "ssf_stream", t.handleDeleteStream},
		{"GET " + PathStatus, "ssf_status", t.handleReadStatus},
		{"POST " + PathStatus, "ssf_status", t.handleUpdateStatus},
		{"POST " + PathAddSubject, "ssf_subjects", t.handleAddSubject},
		{"POST " + PathRemoveSubject, "ssf_subjects", t.handleRemoveSubject},
		{"POST " + PathVerify, "ssf_verify", t.handleVerify},
		{"POST " + PathPoll + "{id}", "ssf_poll", t.handlePoll},
	}
}

// metadata is the Transmitter Configuration Metadata, SSF 1.0 §7.1.
type metadata struct {
	SpecVersion              string              `json:"spec_version"`
	Issuer                   string              `json:"issuer"`
	JWKSURI                  string              `json:"jwks_uri"`
	DeliveryMethodsSupported []string            `json:"delivery_methods_supported"`
	ConfigurationEndpoint    string              `json:"configuration_endpoint"`
	StatusEndpoint           string              `json:"status_endpoint"`
	AddSubjectEndpoint       string              `json:"add_subject_endpoint"`
	RemoveSubjectEndpoint    string              `json:"remove_subject_endpoint"`
	VerificationEndpoint     string              `json:"verification_endpoint"`
	CriticalSubjectMembers   []string            `json:"critical_subject_members,omitempty"`
	AuthorizationSchemes     []map[string]string `json:"authorization_schemes"`
	DefaultSubjects          string              `json:"default_subjects"`
}

func (t *Transmitter) handleConfiguration(w http.ResponseWriter, r *http.Request) {
	iss := t.cfg.Issuer
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, http.StatusOK, metadata{
		SpecVersion: "1_0", Issuer: iss, JWKSURI: t.cfg.JWKSURI,
		DeliveryMethodsSupported: []string{rescind.SSFPush, rescind.SSFPoll},
		ConfigurationEndpoint:    iss + PathStream, StatusEndpoint: iss + PathStatus,
		AddSubjectEndpoint: iss + PathAddSubject, RemoveSubjectEndpoint: iss + PathRemoveSubject,
		VerificationEndpoint: iss + PathVerify,
		AuthorizationSchemes: []map[string]string{{"spec_urn": "urn:ietf:rfc:6749"}},
		DefaultSubjects:      "NONE",
	})
}

// apiError is an error of the management and poll endpoints, rendered as the OAuth-style JSON
// {"error", "error_description"} (and, for RFC 8936 polls, the same members).
type apiError struct {
	status      int
	code, descr string
}

func (e *apiError) Error() string { return e.code + ": " + e.descr }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, descr: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "invalid_request", format, args...)
}

var errNoStream = errorf(http.StatusNotFound, "not_found", "no such stream")

// errStreamDisabled refuses to verify a disabled stream, which delivers nothing (SSF 1.0 §8.1.2).
var errStreamDisabled = errorf(http.StatusConflict, "stream_disabled", "the stream is disabled: enable it to verify it")

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (t *Transmitter) writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		t.log.Error("ssf: request failed", "err", err)
		ae = errorf(http.StatusInternalServerError, "server_error", "the request could not be completed; try again")
	}
	switch ae.status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="invalid_token", error_description=%q`, ae.descr))
	case http.StatusForbidden:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", scope=%q`, ScopeManage))
	}
	writeJSON(w, ae.status, map[string]string{"error": ae.code, "error_description": ae.descr})
}

// authenticate checks the request's bearer token (RFC 6750 §2.1) and that it has one of the
// scopes.
func (t *Transmitter) authenticate(r *http.Request, scopes ...string) (Token, error) {
	h := r.Header.Get("Authorization")
	scheme, text, ok := strings.Cut(h, " ")
	if h == "" {
		return Token{}, &apiError{status: http.StatusUnauthorized, code: "invalid_token", descr: "an access token is required (Authorization: Bearer)"}
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || text == "" {
		return Token{}, errorf(http.StatusUnauthorized, "invalid_token", "the Authorization header must be: Bearer <access token>")
	}
	tok, err := t.cfg.Authenticate(r.Context(), strings.TrimSpace(text))
	if err != nil {
		return Token{}, errorf(http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
	}
	if !tok.ClientCredentials {
		// A token a person granted is the person's, whatever its scope: the streams see
		// everyone's events, so only a receiver acting as itself may hold one.
		return Token{}, errorf(http.StatusUnauthorized, "invalid_token", "the access token must come from the client credentials grant (a receiver acting as itself, SSF 1.0 §7.1.1)")
	}
	if len(tok.Audience) == 0 || slices.ContainsFunc(tok.Audience, func(a string) bool { return a != t.cfg.Issuer }) {
		// RFC 8707 §2: a token for another resource could be replayed by that resource.
		return Token{}, errorf(http.StatusUnauthorized, "invalid_token", "the access token's audience must be this server (%s) alone; ask for it without a resource parameter", t.cfg.Issuer)
	}
	if err := t.authorized(r.Context(), tok.ClientID, tok.Scopes, scopes...); err != nil {
		return Token{}, err
	}
	return tok, nil
}

// authorized checks that client id, as registered now, may be a receiver with one of scopes:
// it holds the scope today (the token's scopes, granted earlier, must hold it too unless
// tokenScopes is nil), and it was registered by an operator, never by itself (RFC 7591 or a
// metadata document, whatever scopes it named or the server's --scopes offers).
func (t *Transmitter) authorized(ctx context.Context, id string, tokenScopes []string, scopes ...string) error {
	c, err := t.cfg.Store.GetClient(ctx, id)
	if errors.Is(err, rescind.ErrNotFound) {
		return errorf(http.StatusUnauthorized, "invalid_token", "the access token's client no longer exists")
	}
	if err != nil {
		return fmt.Errorf("ssf: reading receiver %s: %w", id, err)
	}
	if c.SelfRegistered() {
		return errorf(http.StatusForbidden, "insufficient_scope", "a self-registered client cannot be a Shared Signals receiver: an operator must register it with scope %s", strings.Join(scopes, " or "))
	}
	for _, s := range scopes {
		if slices.Contains(c.Scopes, s) && (tokenScopes == nil || slices.Contains(tokenScopes, s)) {
			return nil
		}
	}
	return errorf(http.StatusForbidden, "insufficient_scope", "the access token and its client need the scope %s", strings.Join(scopes, " or "))
}

// receiverAllowed reports whether the owner of a stream may still receive its events: it is
// registered by an operator and holds ssf.manage or ssf.read now. A receiver whose scopes were
// taken away gets nothing more, neither new events nor pushes of old ones.
func (t *Transmitter) receiverAllowed(ctx context.Context, clientID string) (bool, error) {
	err := t.authorized(ctx, clientID, nil, ScopeManage, ScopeRead)
	var ae *apiError
	if errors.As(err, &ae) {
		return false, nil
	}
	return err == nil, err
}

// decode reads a JSON body, bounded.
func (t *Transmitter) decode(w http.ResponseWriter, r *http.Request, v any) error {
	// The body is read as JSON whatever its Content-Type says (curl -d sends a form type):
	// these endpoints take bearer tokens, never cookies, so no browser form can reach them.
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, t.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "invalid_request", "the body is larger than %d bytes", t.cfg.MaxBodyBytes)
		}
		return badRequest("the body could not be read")
	}
	// NUL is in no identifier, URL or text these endpoints take, and PostgreSQL text refuses it.
	if bytes.IndexByte(b, 0) >= 0 || bytes.Contains(b, []byte(`\u0000`)) {
		return badRequest("the body must not contain NUL characters")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}") // no body: no members (a poll that only asks for SETs)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest("the body is not the expected JSON object: %v", err)
	}
	return nil
}

// streamRequest authenticates r with one of scopes, decodes its JSON body into body unless body
// is nil, and returns the caller's token and its stream named by id() (read after the body is
// decoded: the body's stream_id or the query's). On failure it has written the error and ok is
// false.
func (t *Transmitter) streamRequest(w http.ResponseWriter, r *http.Request, body any, id func() string, scopes ...string) (Token, rescind.SSFStream, bool) {
	tok, err := t.authenticate(r, scopes...)
	if err == nil && body != nil {
		err = t.decode(w, r, body)
	}
	var st rescind.SSFStream
	if err == nil {
		st, err = t.ownStream(r.Context(), tok, id())
	}
	if err != nil {
		t.writeError(w, err)
		return tok, st, false
	}
	return tok, st, true
}

// queryStreamID returns r's stream_id query parameter, for streamRequest.
func queryStreamID(r *http.Request) func() string {
	return func() string { return r.URL.Query().Get("stream_id") }
}

// ownStream returns the stream id if tok's client owns it. Another receiver's stream is
// answered as if it did not exist.
func (t *Transmitter) ownStream(ctx context.Context, tok Token, id string) (rescind.SSFStream, error) {
	if id == "" {
		return rescind.SSFStream{}, badRequest("stream_id is required")
	}
	st, err := t.cfg.Store.GetSSFStream(ctx, id)
	if errors.Is(err, rescind.ErrNotFound) || (err == nil && st.ClientID != tok.ClientID) {
		return rescind.SSFStream{}, errNoStream
	}
	return st, err
}

// delivery is a stream's delivery object (SSF 1.0 §8.1.1).
type delivery struct {
	Method      string `json:"method"`
	EndpointURL string `json:"endpoint_url,omitempty"`
	// AuthorizationHeader is write-only: never returned.
	AuthorizationHeader string `json:"authorization_header,omitempty"`
}

// streamConfig is the Stream Configuration (SSF 1.0 §8.1.1) as the receiver sends it and as
// the transmitter returns it.
type streamConfig struct {
	StreamID                string    `json:"stream_id,omitempty"`
	Iss                     string    `json:"iss,omitempty"`
	Aud                     any       `json:"aud,omitempty"`
	EventsSupported         []string  `json:"events_supported,omitempty"`
	EventsRequested         *[]string `json:"events_requested,omitempty"`
	EventsDelivered         []string  `json:"events_delivered,omitempty"`
	Delivery                *delivery `json:"delivery,omitempty"`
	MinVerificationInterval int64     `json:"min_verification_interval,omitempty"`
	Description             *string   `json:"description,omitempty"`
	// DefaultSubjects is Rescind's: "ALL" makes the stream carry events about every subject,
	// "NONE" (the default) only about those added.
	DefaultSubjects string `json:"default_subjects,omitempty"`
}

func (t *Transmitter) render(st rescind.SSFStream) streamConfig {
	req := st.EventsRequested
	d := &delivery{Method: st.Method, EndpointURL: st.EndpointURL}
	if st.Method == rescind.SSFPoll {
		d.EndpointURL = t.cfg.Issuer + PathPoll + st.ID
	}
	def := "NONE"
	if st.AllSubjects {
		def = "ALL"
	}
	desc := st.Description
	c := streamConfig{StreamID: st.ID, Iss: t.cfg.Issuer, Aud: st.ClientID, EventsSupported: Supported,
		EventsDelivered: st.EventsDelivered, Delivery: d, MinVerificationInterval: int64(t.cfg.MinVerificationInterval / time.Second),
		DefaultSubjects: def}
	if req != nil {
		c.EventsRequested = &req
	}
	if desc != "" {
		c.Description = &desc
	}
	return c
}

// apply sets on st what the receiver may set, from c: all of it (replace), or what c has
// (update). It validates delivery and seals the authorization header.
func (t *Transmitter) apply(st *rescind.SSFStream, c streamConfig, replace bool) error {
	if c.Iss != "" && c.Iss != t.cfg.Issuer {
		return badRequest("iss is the transmitter's and cannot be set")
	}
	if replace || c.EventsRequested != nil {
		st.EventsRequested = nil
		if c.EventsRequested != nil {
			st.EventsRequested = slices.Clone(*c.EventsRequested)
			if len(st.EventsRequested) > 100 {
				return badRequest("events_requested has more than 100 entries")
			}
		}
	}
	// events_delivered: the requested types that are supported; unknown ones are ignored (SSF
	// 1.0 §8.1.1). A stream that requested nothing gets every supported type.
	st.EventsDelivered = []string{}
	for _, e := range Supported {
		if st.EventsRequested == nil || slices.Contains(st.EventsRequested, e) {
			st.EventsDelivered = append(st.EventsDelivered, e)
		}
	}
	if replace || c.Description != nil {
		st.Description = ""
		if c.Description != nil {
			if len(*c.Description) > 1000 {
				return badRequest("description is longer than 1000 bytes")
			}
			st.Description = *c.Description
		}
	}
	switch c.DefaultSubjects {
	case "":
		if replace {
			st.AllSubjects = false
		}
	case "ALL":
		st.AllSubjects = true
	case "NONE":
		st.AllSubjects = false
	default:
		return badRequest(`default_subjects must be "ALL" or "NONE"`)
	}
	if c.Delivery == nil {
		if replace || st.Method == "" {
			st.Method, st.EndpointURL, st.AuthHeader = rescind.SSFPoll, "", nil
		}
		return nil
	}
	d := *c.Delivery
	switch d.Method {
	case rescind.SSFPoll:
		// The poll endpoint is the transmitter's (RFC 8936 §2): what the receiver gave is ignored.
		st.Method, st.EndpointURL, st.AuthHeader = rescind.SSFPoll, "", nil
	case rescind.SSFPush:
		if err := t.checkPushEndpoint(d.EndpointURL); err != nil {
			return err
		}
		st.Method, st.EndpointURL, st.AuthHeader = rescind.SSFPush, d.EndpointURL, nil
		if d.AuthorizationHeader != "" {
			if len(d.AuthorizationHeader) > 4096 || strings.ContainsAny(d.AuthorizationHeader, "\r\n\x00") {
				return badRequest("delivery.authorization_header must be one header value of at most 4096 bytes")
			}
			sealed, err := t.cfg.Box.Seal([]byte(d.AuthorizationHeader), []byte("ssf stream "+st.ID))
			if err != nil {
				return fmt.Errorf("sealing the push authorization header: %w", err)
			}
			st.AuthHeader = sealed
		}
	case "":
		return badRequest("delivery.method is required: %s (push) or %s (poll)", rescind.SSFPush, rescind.SSFPoll)
	default:
		return badRequest("delivery.method %q is not supported: %s (push) or %s (poll)", d.Method, rescind.SSFPush, rescind.SSFPoll)
	}
	return nil
}

// checkPushEndpoint refuses a push endpoint that is not an absolute https URL, or whose host
// is an address that is not public (private, link-local, loopback: loopback over http or https
// only with AllowLoopbackPush). Names are checked again when they are dialled (package
// safehttp), so a name that resolves to a private address is refused then.
func (t *Transmitter) checkPushEndpoint(raw string) error {
	if raw == "" {
		return badRequest("delivery.endpoint_url is required for push delivery (RFC 8935)")
	}
	if len(raw) > 2048 {
		return badRequest("delivery.endpoint_url is longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return badRequest("delivery.endpoint_url must be an absolute https URL")
	}
	host := u.Hostname()
	loop := safehttp.IsLoopbackHost(host) // the rule the deliverer applies too
	if loop && !t.cfg.AllowLoopbackPush {
		return badRequest("delivery.endpoint_url is on loopback, which receives no pushes (--ssf-allow-loopback-push allows it, for development)")
	}
	policy := safehttp.Policy{AllowLoopback: t.cfg.AllowLoopbackPush}
	if _, err := policy.CheckURL(raw, loop && t.cfg.AllowLoopbackPush); err != nil {
		if errors.Is(err, safehttp.ErrForbiddenAddress) {
			return badRequest("delivery.endpoint_url is on an address that is not public (private, link-local, loopback or reserved): %s", host)
		}
		return badRequest("delivery.endpoint_url: %s", strings.TrimPrefix(err.Error(), "safehttp: "))
	}
	return nil
}

// newStreamID returns a random 128-bit stream id in lowercase base32, as client ids are: never
// starting with "-", so that a command line cannot take it for a flag.
func newStreamID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

// handleCreateStream creates a stream, SSF 1.0 §8.1.1.1: 201 with its configuration.
func (t *Transmitter) handleCreateStream(w http.ResponseWriter, r *http.Request) {
	tok, err := t.authenticate(r, ScopeManage)
	if err != nil {
		t.writeError(w, err)
		return
	}
	var c streamConfig
	if err := t.decode(w, r, &c); err != nil {
		t.writeError(w, err)
		return
	}
	if c.StreamID != "" {
		t.writeError(w, badRequest("stream_id is chosen by the transmitter"))
		return
	}
	id, err := newStreamID()
	if err != nil {
		t.writeError(w, err)
		return
	}
	now := t.now()
	st := rescind.SSFStream{ID: id, ClientID: tok.ClientID, Status: rescind.SSFEnabled, CreatedAt: now, UpdatedAt: now}
	if err := t.apply(&st, c, true); err != nil {
		t.writeError(w, err)
		return
	}
	err = t.cfg.Store.CreateSSFStream(r.Context(), st, t.cfg.MaxStreamsPerClient)
	if errors.Is(err, rescind.ErrLimit) {
		t.writeError(w, errorf(http.StatusConflict, "limit_reached", "this receiver already has %d streams: delete one first", t.cfg.MaxStreamsPerClient))
		return
	}
	if err != nil {
		t.writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, t.render(st))
}

// handleReadStream reads one stream (stream_id given) or every stream of the receiver, SSF 1.0
// §8.1.1.2.
func (t *Transmitter) handleReadStream(w http.ResponseWriter, r *http.Request) {
	tok, err := t.authenticate(r, ScopeRead, ScopeManage)
	if err != nil {
		t.writeError(w, err)
		return
	}
	if id := r.URL.Query().Get("stream_id"); id != "" {
		st, err := t.ownStream(r.Context(), tok, id)
		if err != nil {
			t.writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, t.render(st))
		return
	}
	list, err := t.cfg.Store.ListSSFStreams(r.Context(), tok.ClientID)
	if err != nil {
		t.writeError(w, err)
		return
	}
	out := make([]streamConfig, 0, len(list))
	for _, st := range list {
		out = append(out, t.render(st))
	}
	writeJSON(w, http.StatusOK, out)
}

func (t *Transmitter) handleUpdateStream(w http.ResponseWriter, r *http.Request) {
	t.change(w, r, false)
}
func (t *Transmitter) handleReplaceStream(w http.ResponseWriter, r *http.Request) {
	t.change(w, r, true)
}

// change updates (PATCH, SSF 1.0 §8.1.1.3) or replaces (PUT, §8.1.1.4) a stream's
// configuration.
func (t *Transmitter) change(w http.ResponseWriter, r *http.Request, replace bool) {
	var c streamConfig
	tok, st, ok := t.streamRequest(w, r, &c, func() string { return c.StreamID }, ScopeManage)
	if !ok {
		return
	}
	st, err := t.updateStream(r.Context(), tok, st.ID, func(st *rescind.SSFStream) error { return t.apply(st, c, replace) })
	if err != nil {
		t.writeError(w, err)
		return
	}
	if st.Method == rescind.SSFPush && t.cfg.Wake != nil {
		t.cfg.Wake() // the events it held, if it was a poll stream, are pushed now
	}
	writeJSON(w, http.StatusOK, t.render(st))
}

// updateStream makes change to tok's stream id as the store holds it when it writes it, in the
// store's transaction (rescind.Store.UpdateSSFStream), and stamps it updated now: a request
// changes only what it was asked to, and puts back nothing another request changed since
// streamRequest read the stream. An error of change (a refusal) is returned and nothing is
// written; a stream deleted since it was read is errNoStream (SSF 1.0 §8.1.1.3, §8.1.2.2: 404).
func (t *Transmitter) updateStream(ctx context.Context, tok Token, id string, change func(*rescind.SSFStream) error) (rescind.SSFStream, error) {
	st, err := t.cfg.Store.UpdateSSFStream(ctx, id, func(st *rescind.SSFStream) error {
		if st.ClientID != tok.ClientID {
			return errNoStream
		}
		if err := change(st); err != nil {
			return err
		}
		st.UpdatedAt = t.now()
		return nil
	})
	if errors.Is(err, rescind.ErrNotFound) {
		return st, errNoStream
	}
	return st, err
}

// handleDeleteStream deletes a stream, SSF 1.0 §8.1.1.5: 204.
func (t *Transmitter) handleDeleteStream(w http.ResponseWriter, r *http.Request) {
	_, st, ok := t.streamRequest(w, r, nil, queryStreamID(r), ScopeManage)
	if !ok {
		return
	}
	if err := t.cfg.Store.DeleteSSFStream(r.Context(), st.ID); err != nil && !errors.Is(err, rescind.ErrNotFound) {
		t.writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type statusBody struct {
	StreamID string `json:"stream_id"`
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// handleReadStatus is SSF 1.0 §8.1.2.1.
func (t *Transmitter) handleReadStatus(w http.ResponseWriter, r *http.Request) {
	_, st, ok := t.streamRequest(w, r, nil, queryStreamID(r), ScopeRead, ScopeManage)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, statusBody{StreamID: st.ID, Status: string(st.Status), Reason: st.StatusReason})
}

// handleUpdateStatus is SSF 1.0 §8.1.2.2: enabled, paused (events held) or disabled (events
// dropped).
func (t *Transmitter) handleUpdateStatus(w http.ResponseWriter, r *http.Request) {
	var b statusBody
	tok, st, ok := t.streamRequest(w, r, &b, func() string { return b.StreamID }, ScopeManage)
	if !ok {
		return
	}
	status := rescind.SSFStatus(b.Status)
	switch status {
	case rescind.SSFEnabled, rescind.SSFPaused, rescind.SSFDisabled:
	default:
		t.writeError(w, badRequest(`status must be "enabled", "paused" or "disabled"`))
		return
	}
	if len(b.Reason) > 1000 {
		t.writeError(w, badRequest("reason is longer than 1000 bytes"))
		return
	}
	st, err := t.updateStream(r.Context(), tok, st.ID, func(st *rescind.SSFStream) error {
		st.Status, st.StatusReason = status, b.Reason
		return nil
	})
	if err != nil {
		t.writeError(w, err)
		return
	}
	if st.Status == rescind.SSFEnabled && t.cfg.Wake != nil {
		t.cfg.Wake()
	}
	writeJSON(w, http.StatusOK, statusBody{StreamID: st.ID, Status: string(st.Status), Reason: st.StatusReason})
}

type subjectBody struct {
	StreamID string          `json:"stream_id"`
	Subject  json.RawMessage `json:"subject"`
	Verified *bool           `json:"verified,omitempty"`
}

// handleAddSubject is SSF 1.0 §8.1.3.2: 200.
func (t *Transmitter) handleAddSubject(w http.ResponseWriter, r *http.Request) {
	tok, b, st, err := t.subjectRequest(w, r)
	if err != nil {
		t.writeError(w, err)
		return
	}
	canon, keys, err := subjectKeys(b.Subject)
	if err == nil {
		err = checkSubjectRelation(b.Subject, tok.ClientID)
	}
	if err != nil {
		t.writeError(w, badRequest("%v", err))
		return
	}
	err = t.cfg.Store.AddSSFSubject(r.Context(), rescind.SSFSubject{StreamID: st.ID, ID: subjectID(canon), Subject: canon,
		Keys: keys, AddedAt: t.now()}, t.cfg.MaxSubjectsPerStream)
	switch {
	case errors.Is(err, rescind.ErrLimit):
		t.writeError(w, errorf(http.StatusConflict, "limit_reached", "the stream already has %d subjects", t.cfg.MaxSubjectsPerStream))
	case errors.Is(err, rescind.ErrNotFound):
		t.writeError(w, errNoStream)
	case err != nil:
		t.writeError(w, err)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// handleRemoveSubject is SSF 1.0 §8.1.3.3: 204 (404 if the stream does not have it).
func (t *Transmitter) handleRemoveSubject(w http.ResponseWriter, r *http.Request) {
	_, b, st, err := t.subjectRequest(w, r)
	if err != nil {
		t.writeError(w, err)
		return
	}
	canon, _, err := subjectKeys(b.Subject)
	if err != nil {
		t.writeError(w, badRequest("%v", err))
		return
	}
	found, err := t.cfg.Store.RemoveSSFSubject(r.Context(), st.ID, subjectID(canon))
	if err != nil {
		t.writeError(w, err)
		return
	}
	if !found {
		t.writeError(w, errorf(http.StatusNotFound, "not_found", "the stream has no such subject"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (t *Transmitter) subjectRequest(w http.ResponseWriter, r *http.Request) (Token, subjectBody, rescind.SSFStream, error) {
	tok, err := t.authenticate(r, ScopeManage)
	if err != nil {
		return tok, subjectBody{}, rescind.SSFStream{}, err
	}
	var b subjectBody
	if err := t.decode(w, r, &b); err != nil {
		return tok, b, rescind.SSFStream{}, err
	}
	st, err := t.ownStream(r.Context(), tok, b.StreamID)
	return tok, b, st, err
}

// handleVerify is SSF 1.0 §8.1.4.2: a verification event with the receiver's state is queued
// on the stream; 204.
func (t *Transmitter) handleVerify(w http.ResponseWriter, r *http.Request) {
	var b struct {
		StreamID string `json:"stream_id"`
		State    string `json:"state,omitempty"`
	}
	_, st, ok := t.streamRequest(w, r, &b, func() string { return b.StreamID }, ScopeManage)
	if !ok {
		return
	}
	if len(b.State) > 1024 {
		t.writeError(w, badRequest("state is longer than 1024 bytes"))
		return
	}
	if st.Status == rescind.SSFDisabled {
		t.writeError(w, errStreamDisabled)
		return
	}
	now := t.now()
	ok, err := t.cfg.Store.ClaimSSFVerification(r.Context(), st.ID, now, t.cfg.MinVerificationInterval)
	if errors.Is(err, rescind.ErrNotFound) {
		err = errNoStream // deleted since it was read
	}
	if err != nil {
		t.writeError(w, err)
		return
	}
	if !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(t.cfg.MinVerificationInterval/time.Second)+1))
		t.writeError(w, errorf(http.StatusTooManyRequests, "too_many_requests",
			"verification was asked less than min_verification_interval (%v) ago", t.cfg.MinVerificationInterval))
		return
	}
	fields := map[string]any{}
	if b.State != "" {
		fields["state"] = b.State
	}
	jti, err := newStreamID()
	if err != nil {
		t.writeError(w, err)
		return
	}
	claims, err := claimsJSON(jti, "", now, event{typ: EventVerification, subID: opaque(st.ID), fields: fields})
	if err != nil {
		t.writeError(w, err)
		return
	}
	// 204 only once the event is queued. The append reads the stream holding it, so it queues
	// nothing only if the stream was deleted or disabled at that moment (the jti is new). A
	// stream found neither afterwards was enabled again in between: the event gets one more
	// attempt (re-audit 7 #2: it was answered 204 with nothing queued).
	ev := rescind.SSFEvent{StreamID: st.ID, JTI: jti, Source: "verify:" + jti, Type: EventVerification, Claims: claims, CreatedAt: now}
	for attempt := 1; ; attempt++ {
		n, err := t.cfg.Store.AppendSSFEvents(r.Context(), []rescind.SSFEvent{ev}, t.cfg.PushWindow)
		if err != nil {
			t.writeError(w, err)
			return
		}
		if n > 0 {
			break
		}
		switch st, err := t.cfg.Store.GetSSFStream(r.Context(), st.ID); {
		case errors.Is(err, rescind.ErrNotFound):
			t.writeError(w, errNoStream)
			return
		case err != nil:
			t.writeError(w, err)
			return
		case st.Status == rescind.SSFDisabled:
			t.writeError(w, errStreamDisabled)
			return
		case attempt >= 2:
			t.writeError(w, errorf(http.StatusConflict, "stream_disabled",
				"the stream was disabled while the verification event was being queued: nothing was queued"))
			return
		}
	}
	if t.cfg.Wake != nil {
		t.cfg.Wake()
	}
	w.WriteHeader(http.StatusNoContent)
}

// sign makes the SET of a stored event for stream st.
func (t *Transmitter) sign(st rescind.SSFStream, ev rescind.SSFEvent) (string, error) {
	c, err := fullClaims(ev.Claims, t.cfg.Issuer, st.ClientID)
	if err != nil {
		return "", err
	}
	return t.cfg.Sign(c, TypeSET)
}

// DeliverSignal is the outbox deliverer of rescind.OutboxSignal: it appends one event per
// stream that wants it (a stream not disabled, carrying the event's type, that has all
// subjects or one of the event's), idempotently, then wakes the dispatcher for the pushes.
func (t *Transmitter) DeliverSignal(ctx context.Context, m rescind.OutboxMessage) error {
	var sg rescind.Signal
	if err := json.Unmarshal(m.Payload, &sg); err != nil || sg.ID == "" {
		return outbox.Permanent(fmt.Errorf("ssf: an unreadable signal: %v", err))
	}
	evs := eventsOf(t.cfg.Issuer, sg)
	if len(evs) == 0 {
		return nil
	}
	streams, err := t.cfg.Store.ListSSFStreams(ctx, "")
	if err != nil {
		return err
	}
	var keys []string
	for _, e := range evs {
		keys = append(keys, e.keys...)
	}
	subs, err := t.cfg.Store.SSFSubjectsMatching(ctx, keys)
	if err != nil {
		return err
	}
	// The keys find candidates; each event goes only to the streams with a subject that covers
	// it exactly (subjectMatches: every member of a complex subject, by name).
	matched := map[string]map[int]bool{}
	receiver := map[string]string{}
	for _, st := range streams {
		receiver[st.ID] = st.ClientID
	}
	for _, s := range subs {
		// A subject stored before the relation rule covered it (or by an older release) is
		// held to it too: it never tells a receiver of another client, or of people it did
		// not name.
		if rx, ok := receiver[s.StreamID]; !ok || checkSubjectRelation(s.Subject, rx) != nil {
			continue
		}
		for i, e := range evs {
			if subjectMatches(s.Subject, e.members) {
				if matched[s.StreamID] == nil {
					matched[s.StreamID] = map[int]bool{}
				}
				matched[s.StreamID][i] = true
			}
		}
	}
	now := t.now()
	var out []rescind.SSFEvent
	allowed := map[string]bool{}
	for _, st := range streams {
		if st.Status == rescind.SSFDisabled || (!st.AllSubjects && len(matched[st.ID]) == 0) {
			continue
		}
		ok, seen := allowed[st.ClientID]
		if !seen {
			if ok, err = t.receiverAllowed(ctx, st.ClientID); err != nil {
				return err
			}
			allowed[st.ClientID] = ok
		}
		if !ok {
			continue
		}
		for i, e := range evs {
			if !slices.Contains(st.EventsDelivered, e.typ) || (!st.AllSubjects && !matched[st.ID][i]) {
				continue
			}
			jti, err := newStreamID()
			if err != nil {
				return err
			}
			claims, err := claimsJSON(jti, sg.Txn, sg.At, e)
			if err != nil {
				return outbox.Permanent(err)
			}
			out = append(out, rescind.SSFEvent{StreamID: st.ID, JTI: jti, Source: sg.ID, Type: e.typ, Claims: claims, CreatedAt: now})
		}
	}
	if len(out) == 0 {
		return nil
	}
	if _, err := t.cfg.Store.AppendSSFEvents(ctx, out, t.cfg.PushWindow); err != nil {
		return err
	}
	if t.cfg.Wake != nil {
		t.cfg.Wake()
	}
	return nil
}

// PushDeliverer returns the outbox deliverer of rescind.OutboxSSFPush: it POSTs the event's SET
// to the stream's endpoint (RFC 8935 §2), signed now, with the receiver's Authorization header
// opened now; a paused stream's push waits without counting an attempt. A 2xx acknowledges the
// event; a refusal (RFC 8935 §2.3: 400 with err and description) is recorded on it, except
// err "invalid_key" (the receiver could not verify the SET with the keys it holds), which is
// retried with backoff within the push window, the SET signed afresh, the event left pending.
func (t *Transmitter) PushDeliverer() outbox.Deliverer {
	h := outbox.NewHTTPDeliverer(outbox.HTTPConfig{AllowLoopback: t.cfg.AllowLoopbackPush, Now: t.now})
	return outbox.DelivererFunc(func(ctx context.Context, m rescind.OutboxMessage) error {
		var p struct {
			JTI string `json:"jti"`
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil || p.JTI == "" {
			return outbox.Permanent(errors.New("ssf: an unreadable push"))
		}
		st, err := t.cfg.Store.GetSSFStream(ctx, m.Key)
		if errors.Is(err, rescind.ErrNotFound) {
			return nil // the stream is gone, and its events with it
		}
		if err != nil {
			return err
		}
		switch {
		case st.Status == rescind.SSFDisabled:
			return nil // a disabled stream holds nothing
		case st.Status == rescind.SSFPaused:
			return outbox.Later(t.now().Add(10*time.Minute), "the stream is paused")
		case st.Method != rescind.SSFPush:
			// Now a poll stream: the event waits for a poll. The message waits too (a claimed
			// one survives the switch): if the stream becomes push again, it pushes the event
			// unless a poll acknowledged it meanwhile.
			return outbox.Later(t.now().Add(10*time.Minute), "the stream is delivered by poll")
		}
		if ok, err := t.receiverAllowed(ctx, st.ClientID); err != nil {
			return err
		} else if !ok {
			// Its scope was taken away: nothing more is pushed. Looked at again later (the
			// scope may come back); the event's retention bounds the wait.
			return outbox.Later(t.now().Add(10*time.Minute), "the receiver no longer holds ssf.manage or ssf.read")
		}
		ev, err := t.cfg.Store.GetSSFEvent(ctx, st.ID, p.JTI)
		if errors.Is(err, rescind.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if !ev.AckedAt.IsZero() {
			return nil
		}
		// After a key refusal (on any instance) the SET is signed afresh, not taken from a cache.
		set, err := t.signCached(st, ev, strings.HasPrefix(m.LastError, keyRefusedText))
		if err != nil {
			return err
		}
		hdr := http.Header{"Accept": {"application/json"}}
		if len(st.AuthHeader) > 0 {
			v, err := t.cfg.Box.Open(st.AuthHeader, []byte("ssf stream "+st.ID))
			if err != nil {
				return outbox.Permanent(fmt.Errorf("ssf: opening the push authorization header of stream %s: %w", st.ID, err))
			}
			hdr.Set("Authorization", string(v))
		}
		perr := h.Post(ctx, outbox.HTTPRequest{URL: st.EndpointURL, ContentType: "application/secevent+jwt", Body: []byte(set), Header: hdr})
		if re, ok := keyRefused(perr); ok {
			// The receiver could not verify the SET with the keys it holds: its JWKS copy lacks
			// the kid (a rotation with --now, a copy older than the key) or the key was retired
			// since it was signed. That passes (it refetches; the key in force changes), so it
			// is retried with backoff within the push window, signed afresh, and the event is
			// not acknowledged meanwhile.
			t.forget(st, ev)
			return fmt.Errorf("%s; retried, signed afresh: %w", keyRefusedText, re)
		}
		switch {
		case perr == nil:
			_, err := t.cfg.Store.AckSSFEvents(ctx, st.ID, []string{ev.JTI}, nil, "", t.now())
			return err
		case outbox.IsPermanent(perr):
			_, _ = t.cfg.Store.AckSSFEvents(ctx, st.ID, nil, map[string]string{ev.JTI: perr.Error()}, "ssf_push", t.now())
		}
		return perr
	})
}

// keyRefusedText starts the error of a push the receiver refused with RFC 8935 §2.3's
// "invalid_key": the next attempt, on whichever instance, reads it in the message's LastError
// and signs the SET afresh.
const keyRefusedText = "ssf: the receiver could not verify the SET's key (invalid_key)"

// keyRefused reports whether err is a receiver's refusal of a SET with RFC 8935 §2.3's err
// "invalid_key" (a 400 whose JSON body says so), and returns that refusal.
func keyRefused(err error) (*outbox.ResponseError, bool) {
	var re *outbox.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return nil, false
	}
	var body struct {
		Err string `json:"err"`
	}
	if json.Unmarshal(re.Body, &body) != nil || body.Err != "invalid_key" {
		return nil, false
	}
	return re, true
}

// Retention of events: an acknowledged event is kept a day (for the record of its
// acknowledgement), a pending one a week (a receiver that does not poll for a week, or a stream
// paused that long, loses the oldest; push retries end sooner, after PushWindow).
const (
	keepAcked   = 24 * time.Hour
	keepPending = 7 * 24 * time.Hour
)

// RunJanitor deletes old events every interval until ctx ends.
func (t *Transmitter) RunJanitor(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := t.now()
		if n, err := t.cfg.Store.DeleteSSFEvents(ctx, now.Add(-keepAcked), now.Add(-keepPending)); err != nil {
			t.log.Error("ssf: deleting old events", "err", err)
		} else if n > 0 {
			t.log.Info("ssf: old events deleted", "events", n)
		}
	}
}
