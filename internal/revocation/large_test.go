package revocation

import (
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/revfill"
	"github.com/rescind/rescind/store/sqlite"
)

// idText returns the token id (jti) of the i-th generated token: base64url of 16 bytes, as the
// server writes them.
func idText(i int) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(i)*0x9E3779B97F4A7C15)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// grantText returns the id of the i-th generated grant: lowercase base32 of 16 bytes, as the
// server makes grant ids.
func grantText(i int) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(i)*0xBF58476D1CE4E5B9)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return lowerBase32.EncodeToString(b[:])
}

// statusListText is the id of the l-th generated status list.
func statusListText(l int) string { return grantText(1<<40 + l) }

// generated returns the i-th of a set of revocation records like a deployment holds: every
// 100th revokes a grant, the others revoke one access token each, half of them JWTs with a
// status list entry (lists of 32,768 entries, as an instance allocates them). Every record
// expires within the hour after base.
func generated(i int, base time.Time) rescind.Revocation {
	exp := base.Add(time.Duration(i%3600) * time.Second)
	if i%100 == 99 {
		return rescind.Revocation{Kind: rescind.RevokeGrant, Key: grantText(i), ClientID: "client", RevokedAt: base, ExpiresAt: exp,
			Subject: "user", StatusIdx: -1}
	}
	r := rescind.Revocation{Kind: rescind.RevokeToken, Key: idText(i), ClientID: "client", RevokedAt: base, ExpiresAt: exp, StatusIdx: -1}
	if i%2 == 1 {
		r.StatusList, r.StatusIdx = statusListText(i/2/32768), int64((i/2)%32768)*4
	}
	return r
}

// fillStore writes n generated records to st, in transactions of 10,000.
func fillStore(tb testing.TB, st rescind.Store, n int, base time.Time) {
	tb.Helper()
	batch := make([]rescind.Revocation, 0, 10000)
	for i := range n {
		batch = append(batch, generated(i, base))
		if len(batch) == cap(batch) || i == n-1 {
			if err := st.Revoke(context.Background(), batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// BenchmarkIsRevokedLarge measures the revocation-state lookup of a token that is not revoked,
// with 1,000,000 records held (token ids as the server writes them).
func BenchmarkIsRevokedLarge(b *testing.B) {
	s := NewState()
	base := time.Now().Add(time.Hour)
	for i := range 1_000_000 {
		s.Apply(generated(i, base))
	}
	jti, gid := idText(2_000_001), grantText(2_000_001)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s.IsRevoked(jti, gid, "client", base) {
				b.Fatal("revoked")
			}
		}
	})
}

// BenchmarkRevokedRefLarge is BenchmarkIsRevokedLarge for a token whose ids were parsed once
// (NewTokenRef), as the server checks them.
func BenchmarkRevokedRefLarge(b *testing.B) {
	s := NewState()
	base := time.Now().Add(time.Hour)
	for i := range 1_000_000 {
		s.Apply(generated(i, base))
	}
	ref := NewTokenRef(idText(2_000_001), grantText(2_000_001), "client", base)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s.Revoked(&ref) {
				b.Fatal("revoked")
			}
		}
	})
}

// BenchmarkLoadLarge measures loading 1,000,000 records from SQLite into an empty State (what
// a server does at start), with Load (page by page) and with Preload (in parallel ranges), and
// reports the heap the State holds afterwards.
func BenchmarkLoadLarge(b *testing.B) {
	path := filepath.Join(b.TempDir(), "db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	base := time.Now()
	if err := revfill.FillSQLite(context.Background(), path, revfill.Config{N: 1_000_000, Now: base, ExpiresAfter: time.Hour}); err != nil {
		b.Fatal(err)
	}
	for _, how := range []string{"Load", "Preload"} {
		b.Run(how, func(b *testing.B) {
			var s *State
			for b.Loop() {
				s = nil
				runtime.GC()
				s = NewState()
				var n int
				var err error
				if how == "Load" {
					n, err = s.Load(context.Background(), st, base, nil)
				} else {
					n, err = s.Preload(context.Background(), st, base)
				}
				if err != nil || n != 1_000_000 {
					b.Fatalf("%s = %d, %v", how, n, err)
				}
			}
			b.StopTimer()
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
			runtime.KeepAlive(s)
		})
	}
}
