package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/outbox"
	"github.com/rescind/rescind/token"
)

// KindBackchannelLogout is the outbox kind of logout tokens (OpenID Connect Back-Channel Logout
// 1.0): one message per relying party of an ended session, keyed by client id, concerning the
// person (Subject).
const KindBackchannelLogout = rescind.OutboxKindBackchannelLogout

// EventBackchannelLogout is the event of logout tokens (Back-Channel Logout 1.0 §2.4).
const EventBackchannelLogout = "http://schemas.openid.net/event/backchannel-logout"

// typLogoutToken is the typ header of logout tokens (§2.4, RFC 8725 §3.11).
const typLogoutToken = "logout+jwt"

// logoutTokenTTL is how long a logout token is valid after it is made, at delivery (§2.4: exp
// "short"); receivers allow for clock skew.
const logoutTokenTTL = 2 * time.Minute

// logoutPayload is what a back-channel logout message holds: the facts of the logout token,
// never a token or a secret. The token is signed at delivery, with the key in force then.
type logoutPayload struct {
	// JTI is chosen once, so every delivery attempt repeats it and receivers can deduplicate.
	JTI string `json:"jti"`
	SID string `json:"sid"`
	Sub string `json:"sub"`
	// EndedAt is when the session ended (Unix seconds).
	EndedAt int64 `json:"ended_at"`
}

// LogoutNotices returns the rescind.SessionNotices of back-channel logout: for each ended
// session, a message to every client given a code in it that registered a
// backchannel_logout_uri, the one that asked for the logout included; deliverable for window.
// It runs inside the transaction that ends the sessions (rescind.SessionEnd), so the messages
// are committed exactly when the end is.
func LogoutNotices(window time.Duration) rescind.SessionNotices {
	return func(ended []rescind.EndedSession, rev rescind.Revocation) ([]rescind.OutboxMessage, error) {
		var out []rescind.OutboxMessage
		for _, e := range ended {
			for _, c := range e.Clients {
				if c.Client.BackchannelLogoutURI == "" {
					continue
				}
				id, err := token.NewID()
				if err != nil {
					return nil, err
				}
				p, err := json.Marshal(logoutPayload{JTI: base64.RawURLEncoding.EncodeToString(id[:]), SID: e.Session.ID,
					Sub: e.Session.UserID, EndedAt: rev.RevokedAt.Unix()})
				if err != nil {
					return nil, err
				}
				m := outbox.NewMessage(KindBackchannelLogout, c.Client.ID, p, rev.RevokedAt, window)
				m.Subject = e.Session.UserID
				out = append(out, m)
			}
		}
		return out, nil
	}
}

// logoutTokenClaims are the claims of a logout token (§2.4): never a nonce.
type logoutTokenClaims struct {
	Issuer   string                    `json:"iss"`
	Audience string                    `json:"aud"`
	IssuedAt int64                     `json:"iat"`
	Expiry   int64                     `json:"exp"`
	JTI      string                    `json:"jti"`
	Events   map[string]map[string]any `json:"events"`
	SID      string                    `json:"sid,omitempty"`
	Subject  string                    `json:"sub,omitempty"`
}

// PrepareLogoutToken makes the back-channel logout request of an outbox message (an
// outbox.HTTPConfig's Prepare, §2.5): the logout token, signed now with the client's ID token
// algorithm, POSTed as the logout_token form parameter to the client's current
// backchannel_logout_uri. A client deleted, or no longer registering a URI, is a permanent
// failure (given up, audited); a store error is retried.
func (s *Server) PrepareLogoutToken(ctx context.Context, m rescind.OutboxMessage) (outbox.HTTPRequest, error) {
	var p logoutPayload
	if err := json.Unmarshal(m.Payload, &p); err != nil || p.JTI == "" {
		return outbox.HTTPRequest{}, outbox.Permanent(fmt.Errorf("oauth: malformed back-channel logout message: %v", err))
	}
	c, err := s.store.GetClient(ctx, m.Key)
	if errors.Is(err, rescind.ErrNotFound) {
		return outbox.HTTPRequest{}, outbox.Permanent(errors.New("the client was deleted"))
	}
	if err != nil {
		return outbox.HTTPRequest{}, fmt.Errorf("reading the client: %w", err)
	}
	if c.BackchannelLogoutURI == "" {
		return outbox.HTTPRequest{}, outbox.Permanent(errors.New("the client no longer registers a backchannel_logout_uri"))
	}
	if s.idSigner == nil {
		return outbox.HTTPRequest{}, errors.New("oauth: no signer for logout tokens")
	}
	now := s.now()
	text, err := s.idSigner.SignFor(c.IDTokenAlgorithm(), typLogoutToken, func(string) any {
		return logoutTokenClaims{Issuer: s.issuer, Audience: c.ID, IssuedAt: now.Unix(), Expiry: now.Add(logoutTokenTTL).Unix(), JTI: p.JTI,
			Events: map[string]map[string]any{EventBackchannelLogout: {}}, SID: p.SID, Subject: p.Sub}
	})
	if err != nil {
		return outbox.HTTPRequest{}, fmt.Errorf("signing the logout token: %w", err)
	}
	return outbox.HTTPRequest{URL: c.BackchannelLogoutURI, ContentType: "application/x-www-form-urlencoded",
		Body: []byte(url.Values{"logout_token": {text}}.Encode())}, nil
}
