package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
)

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request) {
	var req CreateUserRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the body must be a JSON user")
		return
	}
	if req.Username == "" || len(req.Username) > 100 || !utf8.ValidString(req.Username) {
		writeErr(w, http.StatusBadRequest, "invalid_request", "username is required (at most 100 bytes of UTF-8)")
		return
	}
	// The operator creating users is trusted with their passwords' strength (long passphrases
	// are recommended); only emptiness and absurd lengths are refused.
	if len(req.Password) == 0 || len(req.Password) > 1024 {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the password must be 1 to 1024 bytes")
		return
	}
	id, err := secret.NewID()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "server_error", "no user id")
		return
	}
	hash, err := secret.Hash(req.Password, s.cfg.HashParams)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "server_error", "the password could not be hashed")
		return
	}
	if err := validProfile(req.Name, req.Email); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	u := rescind.User{ID: id, Username: req.Username, PasswordHash: hash, CreatedAt: s.cfg.Now().UTC(), Name: req.Name, Email: req.Email}
	err = s.cfg.Store.CreateUser(r.Context(), u)
	if errors.Is(err, rescind.ErrAlreadyExists) {
		writeErr(w, http.StatusConflict, "already_exists", "a user with this username exists")
		return
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "creating user", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the user could not be stored")
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "user created", "username", u.Username)
	writeJSON(w, http.StatusCreated, userInfo(u))
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request) {
	us, err := s.cfg.Store.ListUsers(r.Context())
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "listing users", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the users could not be read")
		return
	}
	out := make([]UserInfo, 0, len(us))
	for _, u := range us {
		out = append(out, userInfo(u))
	}
	writeJSON(w, http.StatusOK, out)
}

func userInfo(u rescind.User) UserInfo {
	return UserInfo{ID: u.ID, Username: u.Username, CreatedAt: u.CreatedAt, Name: u.Name, Email: u.Email}
}

// validProfile checks a person's name and e-mail address (OpenID Connect's name and email
// claims): bounded UTF-8, and an address of the form local@domain.
func validProfile(name, email string) error {
	if len(name) > 200 || !utf8.ValidString(name) {
		return errors.New("name must be at most 200 bytes of UTF-8")
	}
	if email != "" {
		at := strings.LastIndexByte(email, '@')
		if len(email) > 254 || at < 1 || at == len(email)-1 || strings.ContainsAny(email, " \t\r\n<>") || !utf8.ValidString(email) {
			return errors.New("email must be an address of the form name@domain")
		}
	}
	return nil
}

// handleUpdateUser changes a person's name or e-mail address.
func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request) {
	var req UpdateUserRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the body must be a JSON object of the fields to change (name, email)")
		return
	}
	u, err := s.cfg.Store.GetUserByUsername(r.Context(), r.PathValue("username"))
	if !s.found(w, r, err, "user") {
		return
	}
	if req.Name != nil {
		u.Name = *req.Name
	}
	if req.Email != nil {
		u.Email = *req.Email
	}
	if err := validProfile(u.Name, u.Email); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if err := s.cfg.Store.SetUserProfile(r.Context(), u.ID, u.Name, u.Email); !s.found(w, r, err, "user") {
		return
	}
	writeJSON(w, http.StatusOK, userInfo(u))
}

// grantsRevoked counts the grant records among revs (the rest are status list entries and
// sessions).
func grantsRevoked(revs []rescind.Revocation) int { return count(revs, rescind.RevokeGrant) }

// count counts the records of kind among revs.
func count(revs []rescind.Revocation, kind rescind.RevocationKind) int {
	n := 0
	for _, r := range revs {
		if r.Kind == kind {
			n++
		}
	}
	return n
}

// userResult reports the records of an operation on a person.
func userResult(revs []rescind.Revocation, refreshTokens int64) UserResult {
	return UserResult{SessionsEnded: count(revs, rescind.RevokeSession), GrantsRevoked: grantsRevoked(revs), RefreshTokensRevoked: refreshTokens}
}

// handleUserSessions lists a person's active sign-in sessions.
func (s *Server) handleUserSessions(w http.ResponseWriter, r *http.Request) {
	u, err := s.cfg.Store.GetUserByUsername(r.Context(), r.PathValue("username"))
	if !s.found(w, r, err, "user") {
		return
	}
	list, err := s.cfg.Store.ListSessions(r.Context(), u.ID, s.cfg.Now())
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "listing sessions", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the sessions could not be read")
		return
	}
	out := make([]SessionInfo, 0, len(list))
	for _, l := range list {
		if s.cfg.Committer.SessionEnded(l.ID) {
			continue
		}
		out = append(out, SessionInfo{ID: l.ID, CreatedAt: l.CreatedAt, LastSeenAt: l.LastSeenAt, IdleExpiresAt: l.IdleExpiresAt,
			ExpiresAt: l.ExpiresAt, UserAgent: l.UserAgent, Address: l.Address})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleLogoutUser ends every sign-in session of a person: each instance refuses them once this
// answers (the person's grants, and so the apps' tokens, are untouched). The browsers they
// signed in on are forgotten too (their device cookies no longer spare them the username's
// login rate limit).
func (s *Server) handleLogoutUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.cfg.Store.GetUserByUsername(r.Context(), r.PathValue("username"))
	if !s.found(w, r, err, "user") {
		return
	}
	revs, err := s.cfg.Committer.EndSessions(r.Context(), rescind.SessionFilter{UserID: u.ID, ForgetDevices: true}, rescind.Revocation{
		RevokedAt: s.cfg.Now(), Actor: "admin", Reason: "user logout"})
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "ending sessions", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the sessions could not be ended")
		return
	}
	s.cfg.Logger.InfoContext(r.Context(), "user signed out everywhere", "username", u.Username, "sessions", len(revs))
	writeJSON(w, http.StatusOK, userResult(revs, 0))
}

// handleSetPassword gives a person a new password: every session of theirs ends, and with
// revoke_grants every grant they gave is revoked, in the transaction that stores the new hash.
func (s *Server) handleSetPassword(w http.ResponseWriter, r *http.Request) {
	var req SetPasswordRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the body must be a JSON object with password (and optionally revoke_grants)")
		return
	}
	if len(req.Password) == 0 || len(req.Password) > 1024 {
		writeErr(w, http.StatusBadRequest, "invalid_request", "the password must be 1 to 1024 bytes")
		return
	}
	u, err := s.cfg.Store.GetUserByUsername(r.Context(), r.PathValue("username"))
	if !s.found(w, r, err, "user") {
		return
	}
	hash, err := secret.Hash(req.Password, s.cfg.HashParams)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "server_error", "the password could not be hashed")
		return
	}
	// Each record lives as long as what it covers: a session its own expiry, a grant its tokens.
	revs, n, err := s.cfg.Committer.SetPassword(r.Context(), u.ID, hash, req.RevokeGrants, rescind.Revocation{RevokedAt: s.cfg.Now(),
		Actor: "admin", Reason: "password set"})
	if errors.Is(err, rescind.ErrNotFound) {
		writeErr(w, http.StatusNotFound, "not_found", "no such user")
		return
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "setting a password", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the password could not be set")
		return
	}
	res := userResult(revs, n)
	s.cfg.Logger.InfoContext(r.Context(), "password set; the user's sessions are ended", "username", u.Username,
		"sessions", res.SessionsEnded, "grants", res.GrantsRevoked)
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.cfg.Store.GetUserByUsername(r.Context(), r.PathValue("username"))
	if !s.found(w, r, err, "user") {
		return
	}
	// Each grant's record lives as long as its tokens: the store knows their latest expiry.
	revs, n, err := s.cfg.Committer.DeleteUser(r.Context(), u.ID, rescind.Revocation{RevokedAt: s.cfg.Now(),
		Actor: "admin", Reason: "user deleted"})
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "deleting user", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the user could not be deleted")
		return
	}
	res := userResult(revs, n)
	s.cfg.Logger.InfoContext(r.Context(), "user deleted; their sessions are ended and their grants revoked", "username", u.Username,
		"sessions", res.SessionsEnded, "grants", res.GrantsRevoked)
	writeJSON(w, http.StatusOK, res)
}

// handleRevokeAll revokes in bulk: every grant of a user, of a client, or of a user with a
// client; for a client alone, also every client credentials token it holds.
func (s *Server) handleRevokeAll(w http.ResponseWriter, r *http.Request) {
	var req RevokeAllRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || (req.User == "" && req.Client == "") {
		writeErr(w, http.StatusBadRequest, "invalid_request", "name a user, a client, or both")
		return
	}
	f := rescind.GrantFilter{ClientID: req.Client}
	var client rescind.Client
	if req.Client != "" {
		c, err := s.cfg.Store.GetClient(r.Context(), req.Client)
		if !s.found(w, r, err, "client") {
			return
		}
		client = c
	}
	if req.User != "" {
		u, err := s.cfg.Store.GetUserByUsername(r.Context(), req.User)
		if !s.found(w, r, err, "user") {
			return
		}
		f.UserID = u.ID
	}
	reason := "bulk revocation"
	// Each grant's record lives as long as its tokens: the store knows their latest expiry.
	revs, n, err := s.cfg.Committer.RevokeGrants(r.Context(), f, rescind.Revocation{RevokedAt: s.cfg.Now(),
		Actor: "admin", Reason: reason})
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "bulk revocation", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the revocation could not be recorded")
		return
	}
	res := RevokeResult{GrantsRevoked: grantsRevoked(revs), RefreshTokensRevoked: n}
	if req.Client != "" && req.User == "" {
		// Client credentials tokens belong to no grant and are issued without any write: a
		// cut-off revokes every one issued so far (see revokeClientTokens).
		cut, err := s.revokeClientTokens(r.Context(), client.ID, reason)
		if err != nil {
			s.cfg.Logger.ErrorContext(r.Context(), "bulk revocation of a client's tokens", "err", err)
			writeErr(w, http.StatusInternalServerError, "server_error", "the revocation could not be recorded")
			return
		}
		res.ClientTokensRevoked = true
		res.RevokedBefore = &cut
	}
	s.cfg.Logger.InfoContext(r.Context(), "bulk revocation", "user", req.User, "client_id", req.Client, "grants", len(revs))
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeErr(w, http.StatusBadRequest, "invalid_request", "limit must be 1 to 10000")
			return
		}
		limit = n
	}
	es, err := s.cfg.Store.ListAudit(r.Context(), limit)
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "reading the audit log", "err", err)
		writeErr(w, http.StatusInternalServerError, "server_error", "the audit log could not be read")
		return
	}
	out := make([]AuditInfo, 0, len(es))
	for _, e := range es {
		out = append(out, AuditInfo{At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target, Reason: e.Reason})
	}
	writeJSON(w, http.StatusOK, out)
}
