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

// handleUpdateClient changes a client's name, scopes, token lifetime, redirect URIs, whether it
// must use DPoP or whether it is first-party. Every instance sees the change at once (the store
// tells the others); nothing already issued or revoked changes: a revocation record's lifetime
// never comes from a client's token_ttl. Only the fields given are written, so a concurrent
// change of others (on any instance: a secret rotation, another update) is never undone.
func (s *Server) handleUpdateClient(w http.ResponseWriter, r *http.Request) {
	var req UpdateClientRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the body must be a JSON object of the fields to change: "+err.Error())
		return
	}
	c, err := s.cfg.Store.GetClient(r.Context(), r.PathValue("id"))
	if !s.found(w, r, err, "client") {
		return
	}
	u, err := updateOf(c, req, s.cfg.AllowLoopbackReceivers)
	if err != nil {
		writeErr(w, http.StatusBadRequest, metadataErrorCode(err), err.Error())
		return
	}
	id := c.ID
	c, err = s.cfg.Store.UpdateClient(r.Context(), id, u)
	if !s.changed(w, r, id, err) {
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "client updated", "client_id", c.ID)
	writeJSON(w, http.StatusOK, infoOf(c, s.cfg.TokenTTL(c.TokenTTL)))
}

// updateOf validates req as client creation does (the redirect URIs with c's own allowance)
// and returns the change it asks of c.
//
// A self-registered client's name and redirect URIs are its own (RFC 7592, its metadata
// document): it would set them back at its next update or authorization, so changing them is
// refused; its scopes are limited instead of replaced (Client.ScopeLimit, which its own updates
// never change), and a scope of "" allows it none (audit 16 #2).
func updateOf(c rescind.Client, req UpdateClientRequest, allowLoopback bool) (rescind.ClientUpdate, error) {
	var u rescind.ClientUpdate
	if c.SelfRegistered() && (req.Name != nil || req.RedirectURIs != nil) {
		return u, errors.New("a self-registered client sets its own client_name and redirect_uris (it would set them back): " +
			"limit it with scope or allowed_resources, or delete it")
	}
	if req.Scope != nil && c.SelfRegistered() {
		limit, err := clientScopes(*req.Scope)
		if err != nil {
			return u, err
		}
		if limit == nil {
			limit = []string{} // no scope at all, not "no limit"
		}
		u.ScopeLimit = &limit
		req.Scope = nil
	}
	if req.Name != nil {
		name, err := clientName(*req.Name)
		if err != nil {
			return u, err
		}
		u.Name = &name
	}
	if req.Scope != nil {
		scopes, err := clientScopes(*req.Scope)
		if err != nil {
			return u, err
		}
		u.Scopes = &scopes
	}
	if req.RedirectURIs != nil {
		// The rules creation applies (package redirect), with the client's own allowance.
		if err := redirect.ValidateAll(*req.RedirectURIs, c.AllowInsecureRedirect); err != nil {
			return u, err
		}
		uris := append([]string{}, *req.RedirectURIs...)
		u.RedirectURIs = &uris
	}
	if req.TokenTTL != nil {
		ttl, err := clientTokenTTL(*req.TokenTTL)
		if err != nil {
			return u, err
		}
		u.TokenTTL = &ttl
	}
	if req.AllowedResources != nil {
		allowed, err := ValidateAllowedResources(*req.AllowedResources)
		if err != nil {
			return u, err
		}
		u.AllowedResources = &allowed
	}
	if req.RequireDPoP != nil {
		v := *req.RequireDPoP
		u.RequireDPoP = &v
	}
	if req.FirstParty != nil {
		v := *req.FirstParty
		u.FirstParty = &v
	}
	// The OpenID Connect fields, validated together as creation does.
	if req.IDTokenAlg != nil || req.PostLogoutRedirectURIs != nil || req.BackchannelLogoutURI != nil || req.BackchannelLogoutSessionRequired != nil {
		o := c
		if err := applyOIDC(&o, oidcOf(c, req), allowLoopback); err != nil {
			return u, err
		}
		if req.IDTokenAlg != nil {
			u.IDTokenAlg = &o.IDTokenAlg
		}
		if req.PostLogoutRedirectURIs != nil {
			u.PostLogoutRedirectURIs = &o.PostLogoutRedirectURIs
		}
		if req.BackchannelLogoutURI != nil {
			u.BackchannelLogoutURI = &o.BackchannelLogoutURI
		}
		if req.BackchannelLogoutSessionRequired != nil {
			u.BackchannelLogoutSessionRequired = &o.BackchannelLogoutSessionRequired
		}
	}
	return u, nil
}

// handleRotateSecret gives a confidential client a new secret, shown in this answer only. The
// replaced secret keeps working for the overlap asked (DefaultSecretOverlap, a day, if none is
// given; zero for a leaked secret), then never: the check is made against the clock on every
// request, so no cached verification outlives it.
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
	var until time.Time // no overlap: the replaced secret stops at once
	if overlap > 0 {
		until = s.cfg.Now().Add(overlap).UTC()
	}
	// One statement replaces the stored secret, whatever changed since it was read here.
	id := c.ID
	c, err = s.cfg.Store.RotateClientSecret(r.Context(), id, hash, until)
	if !s.changed(w, r, id, err) {
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "client secret rotated", "client_id", c.ID, "overlap", overlap.String())
	info := infoOf(c, s.cfg.TokenTTL(c.TokenTTL))
	info.ClientSecret = plain
	writeJSON(w, http.StatusOK, info)
}

// changed answers the failure of a change of client id, if any, and drops this instance's cached
// copy and verified secrets (the store tells the other instances). It reports whether the change
// succeeded.
func (s *Server) changed(w http.ResponseWriter, r *http.Request, id string, err error) bool {
	s.cfg.Clients.Invalidate(id)
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
