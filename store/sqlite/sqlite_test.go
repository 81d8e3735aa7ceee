package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/store/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) func() rescind.Store {
		path := filepath.Join(t.TempDir(), "rescind.db")
		return func() rescind.Store { return open(t, path) }
	})
}

// TestReopen shows that migrations are recorded (a second Open applies nothing twice) and that
// committed revocations are there after the database is closed and reopened.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rescind.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.Revoke(context.Background(), []rescind.Revocation{{Kind: rescind.RevokeToken, Key: "t", ClientID: "c",
		RevokedAt: now, ExpiresAt: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, path)
	revs, err := s2.RevocationsSince(context.Background(), 0, now, 10)
	if err != nil || len(revs) != 1 || revs[0].Key != "t" {
		t.Fatalf("after reopen: %+v, %v", revs, err)
	}
}
