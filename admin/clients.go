package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/redirect"
	"github.com/rescind/rescind/internal/secret"
)

// MaxSecretOverlap bounds how long a replaced client secret may keep working after a rotation.
const MaxSecretOverlap = 30 * 24 * time.Hour

// DefaultSecretOverlap is how long a replaced client secret keeps working when a rotation does
// not say: a day to redeploy the client with the new one. A leaked secret is rotated with an
// overlap of zero.
const DefaultSecretOverlap = 24 * time.Hour

// handleUpdateClient changes a client's name, scopes, token lifetime, redirect URIs or whether it
// must use DPoP. Every
// instance sees the change at once (the store tells the others); nothing already issued or
// revoked changes: a revocation record's lifetime never comes from a client's token_ttl.
func (s *Server) handleUpdateClient(w http.ResponseWriter, r *http.Request) {
	var req UpdateClientRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the body must be a JSON object of the fields to change: "+err.Error())
		return
	}
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	c, err := s.cfg.Store.GetClient(r.Context(), r.PathValue("id"))
	if !s.found(w, r, err, "client") {
		return
	}
	if err := applyUpdate(&c, req, s.cfg.AllowLoopbackReceivers); err != nil {
		writeErr(w, http.StatusBadRequest, metadataErrorCode(err), err.Error())
		return
	}
	if !s.storeClient(w, r, c) {
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "client updated", "client_id", c.ID)
	writeJSON(w, http.StatusOK, infoOf(c, s.cfg.TokenTTL(c.TokenTTL)))
}

// applyUpdate validates req as client creation does and applies it to c.
func applyUpdate(c *rescind.Client, req UpdateClientRequest, allowLoopback bool) error {
	if req.Name != nil {
		name, err := clientName(*req.Name)
		if err != nil {
			return err
		}
		c.Name = name
	}
	if req.Scope != nil {
		scopes, err := clientScopes(*req.Scope)
		if err != nil {
			return err
		}
		c.Scopes = scopes
	}
	if req.RedirectURIs != nil {
		// The rules creation applies (package redirect), with the client's own allowance.
		if err := redirect.ValidateAll(*req.RedirectURIs, c.AllowInsecureRedirect); err != nil {
			return err
		}
		c.RedirectURIs = append([]string{}, *req.RedirectURIs...)
	}
	if req.TokenTTL != nil {
		ttl, err := clientTokenTTL(*req.TokenTTL)
		if err != nil {
			return err
		}
		c.TokenTTL = ttl
	}
	if req.RequireDPoP != nil {
		c.RequireDPoP = *req.RequireDPoP
	}
	if req.FirstParty != nil {
		c.FirstParty = *req.FirstParty
	}
	return applyOIDC(c, oidcOf(*c, req), allowLoopback)
}

// handleRotateSecret gives a confidential client a new secret, shown in this answer only. The
// replaced secret keeps working for the overlap asked (none by default), then never: the check
// is made against the clock on every request, so no cached verification outlives it.
func (s *Server) handleRotateSecret(w http.ResponseWriter, r *http.Request) {
	var req RotateSecretRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the body must be JSON: "+err.Error())
		return
	}
	overlap := DefaultSecretOverlap
	if req.Overlap != nil {
		overlap = time.Duration(*req.Overlap)
	}
	if overlap < 0 || overlap > MaxSecretOverlap {
		writeErr(w, http.StatusBadRequest, "invalid_request", "overlap must be between 0 and "+MaxSecretOverlap.String())
		return
	}
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	c, err := s.cfg.Store.GetClient(r.Context(), r.PathValue("id"))
	if !s.found(w, r, err, "client") {
		return
	}
	if c.Public {
		writeErr(w, http.StatusBadRequest, "invalid_request", "a public client has no secret to rotate")
		return
	}
	plain := req.Secret
	if plain == "" {
		if plain, err = secret.Generate(); err != nil {
			writeErr(w, http.StatusInternalServerError, "server_error", "no secret could be generated")
			return
		}
	}
	hash, err := secret.Hash(plain, s.cfg.HashParams)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "server_error", "the secret could not be hashed")
		return
	}
	c.PreviousSecretHash, c.PreviousSecretExpiresAt = "", time.Time{}
	if overlap > 0 {
		c.PreviousSecretHash, c.PreviousSecretExpiresAt = c.SecretHash, s.cfg.Now().Add(overlap).UTC()
	}
	c.SecretHash = hash
	if !s.storeClient(w, r, c) {
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "client secret rotated", "client_id", c.ID, "overlap", overlap.String())
	info := infoOf(c, s.cfg.TokenTTL(c.TokenTTL))
	info.ClientSecret = plain
	writeJSON(w, http.StatusOK, info)
}

// storeClient writes the changed client and drops this instance's cached copy and verified
// secrets (the store tells the other instances). It reports whether it succeeded.
func (s *Server) storeClient(w http.ResponseWriter, r *http.Request, c rescind.Client) bool {
	err := s.cfg.Store.UpdateClient(r.Context(), c)
	s.cfg.Clients.Invalidate(c.ID)
	if errors.Is(err, rescind.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "not_found", "no such client")
		return false
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "updating client", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the client could not be updated")
		return false
	}
	return true
}
