package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/rescind/rescind"
)

// cutoffMargin is how far past the clock skew a client cut-off is first placed, for the commit
// to return within: each attempt whose commit takes longer doubles it (see revokeClientTokens).
const cutoffMargin = time.Second

// cutoffAttempts bounds the attempts of revokeClientTokens (margins of 1, 2, 4, 8 and 16 s).
const cutoffAttempts = 5

// skew is the largest clock difference between instances (Config.ClockSkew).
func (s *Server) skew() time.Duration {
	if s.cfg.ClockSkew <= 0 {
		return time.Minute
	}
	return s.cfg.ClockSkew
}

// revokeClientTokens durably revokes every access token of client issued so far, by any
// instance, and returns the cut-off: every token of the client issued at or before it is
// refused until the record expires.
//
// Tokens of a client's client credentials grant belong to no grant and their issue writes
// nothing, so a cut-off on their iat is what revokes them, and each iat comes from the clock of
// the instance that issued the token. The cut-off C must be at least the iat of every token
// delivered before the revocation is acknowledged:
//
//   - a token delivered before the acknowledgement was issued before it, at a moment when this
//     instance's clock read at most A, the reading taken after the commit returned, just before
//     answering (tokens issued during the commit, on this instance or another, included);
//   - the issuing instance's clock was then at most S (--clock-skew) ahead of this one's, so
//     the token's iat is at most A + S.
//
// So the revocation is acknowledged only if A + S <= C. C is placed at the clock before the
// commit plus S plus a margin; a commit that outlasts the margin (A + S > C) is written again
// with twice the margin, from the clock of that moment. The record expires at C + 30 days: every
// covered token has iat <= C and lives at most rescind.MaxAccessTokenTTL.
//
// The price: tokens the client is issued until the clocks pass C (about S after the
// revocation) are covered too, so the token endpoint refuses to issue them (503 with
// Retry-After) rather than hand out dead ones.
func (s *Server) revokeClientTokens(ctx context.Context, clientID, reason string) (time.Time, error) {
	margin, actor := cutoffMargin, "admin"
	for range cutoffAttempts {
		cut := s.cfg.Now().Add(s.skew() + margin)
		rev := rescind.Revocation{Kind: rescind.RevokeClient, Key: clientID, ClientID: clientID, RevokedAt: cut,
			ExpiresAt: cut.Add(rescind.MaxAccessTokenTTL), Actor: actor, Reason: reason}
		if err := s.cfg.Committer.Revoke(ctx, rev); err != nil {
			return time.Time{}, err
		}
		if acked := s.cfg.Now(); !acked.Add(s.skew()).After(cut) {
			return cut, nil
		}
		// The commit outlasted the margin: a token issued meanwhile by an instance whose clock
		// is ahead may carry an iat after cut. Once more, from now (one audit entry is enough).
		margin, actor = 2*margin, ""
	}
	return time.Time{}, fmt.Errorf("admin: the cut-off's commits took longer than %s each", margin/2)
}

// deletionCutoff is the cut-off (RevokedAt and ExpiresAt alike) of a client deleted when this
// instance's clock read now, just before the deletion's commit.
//
// It revokes every token the client has or will be issued (RevokedAt in the future), and lives
// until the last of them has expired: a token issued before the deletion, or by an instance
// that has not learnt of it yet (it stops issuing when its cached copy of the client expires,
// a minute at most, or sooner by notification), has iat at most now + deletionMargin + S (the
// commit and the cache's staleness within deletionMargin, the issuing instance's clock at most
// S ahead), so it expires by deletionCutoff(now) at the latest.
func (s *Server) deletionCutoff(now time.Time) time.Time {
	return now.Add(rescind.MaxAccessTokenTTL + deletionMargin + s.skew())
}
