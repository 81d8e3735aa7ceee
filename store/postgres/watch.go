package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rescind/rescind"
)

// ListenApplicationName is the application_name of the connection Watch listens on, so an
// operator (or a test) can find it in pg_stat_activity.
const ListenApplicationName = "rescind-listen"

// ReconnectDelay is how long Watch waits before re-establishing a lost connection. Until then
// instances rely on their fallback poll.
var ReconnectDelay = 2 * time.Second

// Watch implements rescind.Watcher with LISTEN on a dedicated connection. After every
// (re)connection it sends EventResync, since notifications sent meanwhile are lost.
func (s *Store) Watch(ctx context.Context, fn func(rescind.Event)) error {
	for {
		err := s.listen(ctx, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		_ = err // the connection dropped; the poll covers the gap until we are back
		t := time.NewTimer(ReconnectDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Store) listen(ctx context.Context, fn func(rescind.Event)) error {
	cfg, err := pgx.ParseConfig(s.dsn)
	if err != nil {
		return fmt.Errorf("postgres: parsing DSN: %w", err)
	}
	cfg.RuntimeParams["application_name"] = ListenApplicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: listen connection: %w", err)
	}
	defer conn.Close(context.Background())
	for _, ch := range []string{chanRevocations, chanClients, chanKeys} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return fmt.Errorf("postgres: LISTEN %s: %w", ch, err)
		}
	}
	fn(rescind.Event{Kind: rescind.EventResync})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("postgres: waiting for notification: %w", err)
		}
		switch n.Channel {
		case chanRevocations:
			if n.Payload == "" {
				fn(rescind.Event{Kind: rescind.EventRevoked}) // too many to carry: reload
				continue
			}
			var p notice
			if json.Unmarshal([]byte(n.Payload), &p) != nil {
				fn(rescind.Event{Kind: rescind.EventRevoked})
				continue
			}
			fn(rescind.Event{Kind: rescind.EventRevoked, Revocations: []rescind.Revocation{{
				Kind: p.Kind, Key: p.Key, ClientID: p.ClientID, RevokedAt: fromNanos(p.RevokedAt), ExpiresAt: fromNanos(p.ExpiresAt),
				Subject: p.Subject, StatusList: p.List, StatusIdx: p.Idx, Audience: p.Audience}}})
		case chanClients:
			fn(rescind.Event{Kind: rescind.EventClientChanged, ClientID: n.Payload})
		case chanKeys:
			fn(rescind.Event{Kind: rescind.EventKeysChanged})
		}
	}
}
