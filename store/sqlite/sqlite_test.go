package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	if m := s.Migrated(); len(m) < 2 || m[0] != "0001_init.sql" {
		t.Fatalf("a new database: Migrated = %v, want every migration from 0001_init.sql", m)
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
	if m := s2.Migrated(); len(m) != 0 {
		t.Fatalf("reopened: Migrated = %v, want none", m)
	}
	revs, err := s2.RevocationsSince(context.Background(), 0, now, 10)
	if err != nil || len(revs) != 1 || revs[0].Key != "t" {
		t.Fatalf("after reopen: %+v, %v", revs, err)
	}
}

// TestNotDatabase: a file that is not a SQLite database is reported as such, and left as it was.
func TestNotDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rescind.db")
	junk := []byte(strings.Repeat("not a database, but someone's data. ", 200))
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(context.Background(), path)
	if !errors.Is(err, sqlite.ErrNotDatabase) {
		t.Fatalf("Open = %v, want ErrNotDatabase", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, junk) {
		t.Fatal("Open changed the file")
	}
}
