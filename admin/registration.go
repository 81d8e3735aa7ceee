package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/token"
)

// DefaultRegistrationTokenTTL is how long an initial access token works when its creation does
// not say.
const DefaultRegistrationTokenTTL = 24 * time.Hour

// MaxRegistrationTokenTTL bounds how long an initial access token works.
const MaxRegistrationTokenTTL = 365 * 24 * time.Hour

// CreateRegistrationTokenRequest is the body of POST /admin/v1/registration-tokens; it may be
// empty.
type CreateRegistrationTokenRequest struct {
	// Expires is how long the token works; absent: DefaultRegistrationTokenTTL.
	Expires *Duration `json:"expires,omitempty"`
	// Scope, space-separated, names the scopes the clients registered with the token may hold
	// (their scope_limit): they may register only those, and get by client credentials only
	// those they registered. Absent: the clients it registers get no scope by client
	// credentials (only what a person consents to in the code flow); "" allows none at all.
	Scope *string `json:"scope,omitempty"`
	// AllowedResources, if set, are the only resources (RFC 8707) the clients registered with
	// the token may ask tokens for (their allowed_resources); absent: any.
	AllowedResources []string `json:"allowed_resources,omitempty"`
}

// RegistrationTokenInfo is how the API shows an initial access token (RFC 7591 §3). Token is set
// only in the answer that created it: it is stored only as a hash.
type RegistrationTokenInfo struct {
	ID        string    `json:"id"`
	Token     string    `json:"token,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Expired   bool      `json:"expired"`
	// Scope is the space-separated scopes the clients registered with it may hold; absent when
	// its creation named none (CreateRegistrationTokenRequest.Scope).
	Scope *string `json:"scope,omitempty"`
	// AllowedResources are the resources the clients registered with it may ask tokens for;
	// absent: any.
	AllowedResources []string `json:"allowed_resources,omitempty"`
}

func (s *Server) registrationTokenInfo(t rescind.RegistrationToken) RegistrationTokenInfo {
	info := RegistrationTokenInfo{ID: t.ID, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, Expired: !s.cfg.Now().Before(t.ExpiresAt),
		AllowedResources: t.AllowedResources}
	if t.Scopes != nil {
		sc := strings.Join(t.Scopes, " ")
		info.Scope = &sc
	}
	return info
}

// handleCreateRegistrationToken makes an initial access token, which lets whoever holds it
// register clients dynamically (serve --registration token) until it expires or is deleted.
func (s *Server) handleCreateRegistrationToken(w http.ResponseWriter, r *http.Request) {
	var req CreateRegistrationTokenRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the body must be JSON: "+err.Error())
		return
	}
	ttl := DefaultRegistrationTokenTTL
	if req.Expires != nil {
		ttl = time.Duration(*req.Expires)
	}
	if ttl < time.Second || ttl > MaxRegistrationTokenTTL {
		writeErr(w, http.StatusBadRequest, "invalid_request", "expires must be between 1s and "+MaxRegistrationTokenTTL.String())
		return
	}
	var scopes []string
	if req.Scope != nil {
		var err error
		if scopes, err = clientScopes(*req.Scope); err != nil {
			writeErr(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
		if scopes == nil {
			scopes = []string{} // no scope at all, not "none given"
		}
	}
	allowed, err := ValidateAllowedResources(req.AllowedResources)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	id, err := secret.NewID()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "server_error", "no token could be generated")
		return
	}
	text, hash, err := token.NewStored(token.InitialAccessPrefix)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "server_error", "no token could be generated")
		return
	}
	now := s.cfg.Now().UTC()
	t := rescind.RegistrationToken{ID: id, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(ttl), Scopes: scopes, AllowedResources: allowed}
	if err := s.cfg.Store.CreateRegistrationToken(r.Context(), t); err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "creating registration token", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the token could not be stored")
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "registration token created", "id", id, "expires_at", t.ExpiresAt,
		"scope", strings.Join(scopes, " "), "scoped", scopes != nil)
	info := s.registrationTokenInfo(t)
	info.Token = text
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) handleListRegistrationTokens(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Store.ListRegistrationTokens(r.Context())
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "listing registration tokens", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the tokens could not be read")
		return
	}
	out := make([]RegistrationTokenInfo, 0, len(list))
	for _, t := range list {
		out = append(out, s.registrationTokenInfo(t))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleDeleteRegistrationToken deletes an initial access token: it registers nothing more.
// The clients it registered stay.
func (s *Server) handleDeleteRegistrationToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.cfg.Store.DeleteRegistrationToken(r.Context(), id)
	if !s.found(w, r, err, "registration token") {
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "registration token deleted", "id", id)
	w.WriteHeader(http.StatusNoContent)
}
