package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/token"
)

// accessToken is what the server knows of an access token of either format.
type accessToken struct {
	jti, grantID, clientID, subject, scope string
	// audience is never empty: a token that carries none is for the issuer.
	audience         []string
	issuedAt, expiry time.Time
	statusList       string
	statusIdx        int64
	// jkt is the thumbprint of the DPoP key the token is bound to; "" for a bearer token.
	jkt string
	// ref is the token as the revocation state looks it up, parsed once.
	ref revocation.TokenRef
}

// parseAccess authenticates an access token, opaque or JWT, issued by this server. It does not
// check expiry or revocation.
func (s *Server) parseAccess(ctx context.Context, text string) (*accessToken, error) {
	return s.readAccess(ctx, text, false)
}

// parseAccessToRevoke is parseAccess for the revocation endpoint: a JWT of this server's is
// recognised by its tag (token.Signer.Authenticate), an HMAC, instead of its signature. Its
// header and claims are authenticated so, its signature is not: a text with another signature
// names the same token, which is all a revocation needs (it revokes the token by its id and
// status entry, never more). Nothing it authenticates this way is cached as verified.
func (s *Server) parseAccessToRevoke(ctx context.Context, text string) (*accessToken, error) {
	return s.readAccess(ctx, text, true)
}

func (s *Server) readAccess(ctx context.Context, text string, byTag bool) (*accessToken, error) {
	if token.LooksLikeJWT(text) {
		if s.signer == nil {
			return nil, token.ErrBadJWT
		}
		// What verification established is cached (jwtcache.go): a token seen before costs a
		// hash and a lookup, not a signature check.
		h := jwtKey(text)
		if at, ok := s.jwts.get(h, s.signer, s.now()); ok {
			return at, nil
		}
		verify := s.signer.VerifyKey
		if byTag {
			verify = s.signer.Authenticate
		}
		payload, kid, err := verify(text, token.TypeAccessToken, s.now())
		if errors.Is(err, token.ErrUnknownKey) && s.refreshSigning != nil {
			// Perhaps a key another instance just rotated in: reload the keys once.
			if named, kerr := token.JWTKeyID(text); kerr == nil && s.refreshSigning(ctx, named) {
				payload, kid, err = verify(text, token.TypeAccessToken, s.now())
			}
		}
		if err != nil {
			return nil, err
		}
		var c token.AccessClaims
		if err := json.Unmarshal(payload, &c); err != nil || c.Issuer != s.issuer || c.ID == "" {
			return nil, token.ErrBadJWT
		}
		at := &accessToken{jti: c.ID, grantID: c.GrantID, clientID: c.ClientID, subject: c.Subject, scope: c.Scope,
			audience: s.audienceOf(c.Audience), issuedAt: time.Unix(c.IssuedAt, 0), expiry: time.Unix(c.Expiry, 0), statusIdx: -1}
		if c.Status != nil {
			at.statusList, at.statusIdx = listID(c.Status.StatusList.URI, s.statusBase), c.Status.StatusList.Idx
		}
		if c.Confirmation != nil {
			at.jkt = c.Confirmation.JKT
		}
		at.ref = revocation.NewTokenRef(at.jti, at.grantID, at.clientID, at.issuedAt)
		if !byTag {
			s.jwts.put(h, verifiedJWT{at: at, kid: kid})
		}
		return at, nil
	}
	c, err := s.openToken(ctx, text)
	if err != nil {
		return nil, err
	}
	return &accessToken{jti: c.JTI(), grantID: c.GrantID, clientID: c.ClientID, subject: c.Subject, scope: c.Scope,
		audience: s.audienceOf(c.Audience), issuedAt: c.IssuedAt, expiry: c.Expiry, statusIdx: -1, jkt: c.JKT,
		ref: revocation.NewTokenRefID(c.ID, c.GrantID, c.ClientID, c.IssuedAt)}, nil
}

// audienceOf returns a token's audience: aud, or the issuer for a token that names none (an
// opaque token sealed before audiences were).
func (s *Server) audienceOf(aud []string) []string {
	if len(aud) == 0 {
		return []string{s.issuer}
	}
	return aud
}

// listID returns the list id of a status list URI of ours, or "".
func listID(uri, base string) string {
	if len(uri) > len(base) && uri[:len(base)] == base && statuslist.ValidID(uri[len(base):]) {
		return uri[len(base):]
	}
	return ""
}

// revoked reports whether the access token is revoked or expired at now.
func (s *Server) dead(at *accessToken) bool {
	return !s.now().Before(at.expiry) || s.revoked.Revoked(&at.ref)
}

// issueJWT signs a JWT access token (RFC 9068) with a status list entry, and records the entry
// for a grant's token so revoking the grant flips it. If the grant was revoked meanwhile, the
// entry is not recorded and no token is signed: the error wraps rescind.ErrNotFound.
func (s *Server) issueJWT(ctx context.Context, client rescind.Client, grantID, subject, scope string, audience []string, jkt string, now, exp time.Time) (string, error) {
	if s.signer == nil || s.statuses == nil {
		return "", errors.New("oauth: JWT access tokens are not configured")
	}
	id, err := token.NewID()
	if err != nil {
		return "", err
	}
	list, idx, err := s.statuses.Next(ctx)
	if err != nil {
		return "", err
	}
	if grantID != "" {
		if err := s.store.RecordGrantTokenStatus(ctx, grantID, list, idx, exp); err != nil {
			return "", err
		}
	}
	return s.signer.Sign(token.AccessClaims{Issuer: s.issuer, Subject: subject, Audience: audience, Expiry: exp.Unix(),
		IssuedAt: now.Unix(), ID: base64.RawURLEncoding.EncodeToString(id[:]), ClientID: client.ID, Scope: scope, GrantID: grantID,
		Status: &token.Status{StatusList: token.StatusListRef{Idx: idx, URI: s.statusBase + list}}, Confirmation: confirmation(jkt)}, token.TypeAccessToken)
}

// handleJWKS publishes the signing keys (RFC 7517), including replaced keys until every token
// they signed has expired.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if s.signer == nil {
		writeJSON(w, http.StatusOK, map[string]any{"keys": []any{}})
		return
	}
	b, err := json.Marshal(s.signer.JWKS(s.now()))
	if err != nil {
		writeError(w, errServer)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(token.JWKSMaxAge/time.Second)))
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

type renderedList struct {
	version uint64
	at      time.Time
	kid     string // the key that signed it
	jwt     []byte
}

var errNoStatusList = errorf("not_found", http.StatusNotFound, "no such status list")

// listExists reports whether id names a status list some instance allocated (and whose tokens
// may still live), so that only real lists are signed and published: a made-up id costs a
// lookup, never a signature. Lists this instance has seen are remembered.
func (s *Server) listExists(ctx context.Context, id string, now time.Time) (bool, error) {
	if s.listKnown(id, now) {
		return true, nil
	}
	s.listMu.Lock()
	until, missing := s.missingLists[id]
	s.listMu.Unlock()
	if missing && now.Before(until) {
		return false, nil
	}
	l, err := s.store.GetStatusList(ctx, id)
	if errors.Is(err, rescind.ErrNotFound) || (err == nil && !now.Before(l.ExpiresAt)) {
		// A list is recorded before any token names it, and ids are random: an id not found
		// now is made up (or long expired). Remember that briefly, so asking again costs nothing.
		s.listMu.Lock()
		if len(s.missingLists) >= 10000 {
			clear(s.missingLists)
		}
		s.missingLists[id] = now.Add(missingListTTL)
		s.listMu.Unlock()
		return false, nil
	}
	if err != nil {
		return false, err
	}
	s.listMu.Lock()
	if len(s.knownLists) > 10000 {
		clear(s.knownLists)
	}
	s.knownLists[id] = l.ExpiresAt
	s.listMu.Unlock()
	return true, nil
}

// missingListTTL is how long an id found to name no status list is answered 404 from memory.
const missingListTTL = 10 * time.Second

// listKnown reports, from memory, whether list id exists: it has revoked entries, or the store
// said so before.
func (s *Server) listKnown(id string, now time.Time) bool {
	if s.revoked.StatusVersion(id) > 0 {
		return true // it has revoked entries: it exists, whatever else is known of it
	}
	s.listMu.Lock()
	exp, ok := s.knownLists[id]
	s.listMu.Unlock()
	return ok && now.Before(exp)
}

// handleStatusList publishes a Status List Token (draft-ietf-oauth-status-list §5.1, §8.1):
// a JWT of type statuslist+jwt served as application/statuslist+jwt. Only a list that exists is
// published (an unknown id is 404 without anything being signed); it is signed once and served
// from memory until it changes, or until half its ttl has passed.
func (s *Server) handleStatusList(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.signer == nil || !statuslist.ValidID(id) {
		writeError(w, errNoStatusList)
		return
	}
	now := s.now()
	// A made-up id costs one primary-key lookup, then nothing for a while (missingLists). No
	// per-address limit here: a lockout would also refuse real lists to whoever shares the
	// address (a resource server behind the same NAT or load balancer), failing its tokens.
	switch ok, err := s.listExists(r.Context(), id, now); {
	case err != nil:
		s.log.ErrorContext(r.Context(), "looking up status list", "err", err)
		writeError(w, &Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Description: "the status list cannot be read now; retry"})
		return
	case !ok:
		writeError(w, errNoStatusList)
		return
	}
	version := s.revoked.StatusVersion(id)
	kid, _ := s.signer.Active()
	s.listMu.Lock()
	cached, ok := s.lists[id]
	s.listMu.Unlock()
	// Re-signed when the list changed, when half its ttl has passed, and when another key signs
	// (a list signed by a key since retired would be refused by resource servers).
	if !ok || cached.version != version || now.Sub(cached.at) > s.statusTTL/2 || cached.kid != kid {
		raw, v := s.revoked.StatusList(id, statuslist.Size)
		lst, err := token.EncodeStatusList(raw)
		if err != nil {
			writeError(w, errServer)
			return
		}
		text, err := s.signer.Sign(token.StatusListClaims{Subject: s.statusBase + id, IssuedAt: now.Unix(),
			Expiry: now.Add(s.statusTTL * 10).Unix(), TTL: int64(s.statusTTL / time.Second),
			StatusList: token.StatusListBody{Bits: 1, Lst: lst}}, token.TypeStatusList)
		if err != nil {
			s.log.ErrorContext(r.Context(), "signing status list", "err", err)
			writeError(w, errServer)
			return
		}
		cached = renderedList{version: v, at: now, kid: kid, jwt: []byte(text)}
		s.listMu.Lock()
		if len(s.lists) > 1024 {
			clear(s.lists)
		}
		s.lists[id] = cached
		s.listMu.Unlock()
	}
	h := w.Header()
	h.Set("Content-Type", "application/statuslist+jwt")
	h.Set("Cache-Control", "max-age="+strconv.Itoa(int(s.statusTTL/time.Second)))
	h.Set("Content-Length", strconv.Itoa(len(cached.jwt)))
	w.Write(cached.jwt)
}

// ErrBearerRefused is BearerToken's error for an access token that cannot be used as a bearer
// token here: malformed, unknown, expired, revoked, or bound to a DPoP key (RFC 9449 §7: it
// needs a proof, which these endpoints do not take).
var ErrBearerRefused = errors.New("oauth: the access token is invalid, expired, revoked or DPoP-bound")

// BearerToken checks an access token of this server's presented as a bearer token (RFC 6750),
// as the endpoints of other packages served with these (Config.Routes) need: it returns the
// token's client and scope. Any failure is ErrBearerRefused.
func (s *Server) BearerToken(ctx context.Context, text string) (clientID, scope string, err error) {
	b, err := s.Bearer(ctx, text)
	return b.ClientID, b.Scope, err
}

// Bearer is what Server.Bearer establishes of a bearer access token: enough for an endpoint to
// decide whether the token is meant for it and who holds it.
type Bearer struct {
	// ClientID is the client the token was issued to.
	ClientID string
	// Subject is the token's sub: a user's id, or the client's own id for a token of the client
	// credentials grant.
	Subject string
	// Scope is the token's scope, space separated.
	Scope string
	// Audience is the token's audience (RFC 8707 resources), never empty: a token issued for no
	// resource is for the issuer.
	Audience []string
	// ClientCredentials reports a token of the client credentials grant (RFC 6749 §4.4): it
	// belongs to no grant of a person, and its subject is the client itself.
	ClientCredentials bool
}

// Bearer checks an access token of this server's presented as a bearer token (RFC 6750), as
// BearerToken does, and returns what it says: its client, subject, scope, audience and whether
// it came from the client credentials grant. Any failure is ErrBearerRefused.
func (s *Server) Bearer(ctx context.Context, text string) (Bearer, error) {
	at, err := s.parseAccess(ctx, text)
	if err != nil || s.dead(at) || at.jkt != "" {
		return Bearer{}, ErrBearerRefused
	}
	return Bearer{ClientID: at.clientID, Subject: at.subject, Scope: at.scope, Audience: slices.Clone(at.audience),
		ClientCredentials: at.grantID == "" && at.subject == at.clientID}, nil
}
