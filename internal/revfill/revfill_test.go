package revfill

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/pgtest"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/store/postgres"
	"github.com/rescind/rescind/store/sqlite"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

var grantIDs = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// checkFilled reads back what Fill wrote through the store: n records of the documented mix,
// ids random and in the server's forms, status entries valid, expiries in the stated hour.
func checkFilled(t *testing.T, st rescind.Store, n int, now time.Time) {
	t.Helper()
	ctx := context.Background()
	revs, err := st.RevocationsSince(ctx, 0, now, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != n {
		t.Fatalf("%d records; want %d", len(revs), n)
	}
	keys := map[string]bool{}
	var grants, jwts int
	for i, r := range revs {
		if keys[r.Key] {
			t.Fatalf("key %s twice", r.Key)
		}
		keys[r.Key] = true
		switch r.Kind {
		case rescind.RevokeGrant:
			grants++
			if b, err := grantIDs.DecodeString(r.Key); err != nil || len(b) != 16 || grantIDs.EncodeToString(b) != r.Key {
				t.Fatalf("grant id %q is not 16 bytes of canonical lowercase base32", r.Key)
			}
		case rescind.RevokeToken:
			if b, err := base64.RawURLEncoding.Strict().DecodeString(r.Key); err != nil || len(b) != 16 {
				t.Fatalf("token id %q is not 16 bytes of canonical base64url", r.Key)
			}
			if r.StatusList != "" {
				jwts++
				if !statuslist.ValidID(r.StatusList) || r.StatusIdx < 0 || r.StatusIdx >= statuslist.Size {
					t.Fatalf("status entry %s/%d", r.StatusList, r.StatusIdx)
				}
			}
		default:
			t.Fatalf("record %d of kind %q", i, r.Kind)
		}
		if r.ClientID != "bench" || !r.RevokedAt.Equal(now) || r.ExpiresAt.Before(now.Add(time.Hour)) || !r.ExpiresAt.Before(now.Add(2*time.Hour)) {
			t.Fatalf("record %+v", r)
		}
	}
	if grants != n/100 || jwts < n/2-n/100 || jwts > n/2 {
		t.Fatalf("%d grants, %d JWT entries of %d records", grants, jwts, n)
	}
}

func TestFillSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Unix(1_900_000_000, 0)
	if err := FillSQLite(context.Background(), path, Config{N: 3000, Now: now, ExpiresAfter: time.Hour}); err != nil {
		t.Fatal(err)
	}
	checkFilled(t, st, 3000, now)
}

func TestFillPostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Unix(1_900_000_000, 0)
	if err := FillPostgres(context.Background(), dsn, Config{N: 3000, Now: now, ExpiresAfter: time.Hour}); err != nil {
		t.Fatal(err)
	}
	checkFilled(t, st, 3000, now)
}

// BenchmarkFillSQLite measures writing 100,000 records.
func BenchmarkFillSQLite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for b.Loop() {
		if err := FillSQLite(context.Background(), path, Config{N: 100_000, Now: time.Now(), ExpiresAfter: time.Hour}); err != nil {
			b.Fatal(err)
		}
	}
}
