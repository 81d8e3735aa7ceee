package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/keys"
)

// KeyInfo is how the API shows a key (never its material): GET /admin/v1/keys.
type KeyInfo struct {
	// KID is the key id, as in the tokens the key sealed or signed (and in the JWKS).
	KID string `json:"kid"`
	// Use is "sig" for a JWT signing key, "enc" for a sealing key of opaque access tokens.
	Use string `json:"use"`
	// Alg is the algorithm: ES256, EdDSA or RS256 (signing), XC20P (sealing). Signing keys of
	// each algorithm rotate, retire and have their states apart (State is the key's state among
	// the keys of its algorithm; those of the access tokens' algorithm among themselves).
	Alg string `json:"alg"`
	// Created is when the key was generated (and, for a signing key, published in the JWKS).
	Created time.Time `json:"created"`
	// State is next (published, not yet in use), active (the key that signs or seals),
	// retiring (replaced; still published and accepted until the tokens it can have signed
	// have expired), superseded (a next key overtaken by a newer one before it ever signed or
	// sealed; accepted like a retiring key) or retired (refused everywhere).
	State string `json:"state"`
	// Activates is when the key starts (or started) to sign or seal.
	Activates time.Time `json:"activates"`
	// Retires is when a replaced key retires by itself.
	Retires *time.Time `json:"retires,omitempty"`
	// Retired is when the key was retired by an operator.
	Retired *time.Time `json:"retired,omitempty"`
}

// RotateKeysRequest is the optional body of POST /admin/v1/keys/rotate.
type RotateKeysRequest struct {
	// Now makes the new signing key sign at once instead of after the JWKS cache lifetime: an
	// emergency, since verifiers that cached the JWKS may refuse new tokens until they refetch.
	Now bool `json:"now,omitempty"`
}

// RetireKeyResponse answers POST /admin/v1/keys/{kid}/retire.
type RetireKeyResponse struct {
	KeyInfo
	// ActivatedKID is the key that took over at once, if the retired key was the one in use.
	ActivatedKID string `json:"activated_kid,omitempty"`
}

func keyInfo(in keys.Info) KeyInfo {
	use := "enc"
	if in.Use == keys.UseSign {
		use = "sig"
	}
	out := KeyInfo{KID: in.ID, Use: use, Alg: in.Algorithm, Created: in.CreatedAt.UTC(), State: string(in.State),
		Activates: in.ActivatesAt.UTC()}
	if !in.RetiredAt.IsZero() {
		t := in.RetiredAt.UTC()
		out.Retired = &t
	} else if !in.RetiresAt.IsZero() {
		t := in.RetiresAt.UTC()
		out.Retires = &t
	}
	return out
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) {
	list, err := s.cfg.Keys.List(r.Context())
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "listing keys", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the keys could not be read")
		return
	}
	out := make([]KeyInfo, 0, len(list))
	for _, in := range list {
		out = append(out, keyInfo(in))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRotateKeys adds a sealing key (in force at once) and a signing key per algorithm the
// server signs with (published at once, signing after the JWKS cache lifetime, or at once with
// "now").
func (s *Server) handleRotateKeys(w http.ResponseWriter, r *http.Request) {
	var req RotateKeysRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err == nil && len(body) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		err = dec.Decode(&req)
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the body must be empty or JSON like {\"now\": true}")
		return
	}
	rot, err := s.cfg.Keys.Rotate(r.Context(), req.Now)
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "rotating keys", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the keys could not be rotated")
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "keys rotated", "seal_kid", rot.SealKeyID, "sign_kid", rot.SigningKeyID,
		"signing_keys", len(rot.Signing), "signing_activates_at", rot.SigningActivatesAt, "now", req.Now)
	out := RotateKeysResponse{KeyID: rot.SealKeyID, SigningKeyID: rot.SigningKeyID, SigningActivates: rot.SigningActivatesAt.UTC()}
	for _, k := range rot.Signing {
		out.SigningKeys = append(out.SigningKeys, RotatedKey{KID: k.ID, Alg: k.Alg})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRetireKey retires a key at once: what it sealed or signed is refused everywhere.
func (s *Server) handleRetireKey(w http.ResponseWriter, r *http.Request) {
	kid := r.PathValue("kid")
	ret, err := s.cfg.Keys.Retire(r.Context(), kid, "admin")
	switch {
	case errors.Is(err, rescind.ErrNotFound):
		writeErr(w, http.StatusNotFound, "not_found", "no such key")
		return
	case errors.Is(err, rescind.ErrKeyInUse):
		writeErr(w, http.StatusConflict, "key_in_use", "key "+kid+" is the one in use and no newer key can take over: "+
			"rotate first (rescind keys rotate), then retire it; the new key takes over at once")
		return
	case err != nil:
		s.cfg.Logger.ErrorContext(r.Context(), "retiring key", "kid", kid, "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the key could not be retired, or its retirement "+
			"could not be confirmed: retry (retiring a retired key changes nothing)")
		return
	}
	s.cfg.Logger.WarnContext(r.Context(), "key retired: its tokens are refused", "kid", kid, "activated_kid", ret.Activated)
	writeJSON(w, http.StatusOK, RetireKeyResponse{KeyInfo: keyInfo(ret.Key), ActivatedKID: ret.Activated})
}
