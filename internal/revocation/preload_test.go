package revocation

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/revfill"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/store/sqlite"
)

// staleLast is a store whose LastRevocationSeq lags by lag records, as if they were committed
// while Preload read the rest.
type staleLast struct {
	rescind.Store
	lag int64
}

func (s staleLast) LastRevocationSeq(ctx context.Context) (int64, error) {
	n, err := s.Store.LastRevocationSeq(ctx)
	return max(n-s.lag, 0), err
}

// answers is what a State says about a set of keys, for comparing two States.
func answers(s *State, keys []string, lists []string) string {
	out := fmt.Sprintf("len %d, lastSeq %d\n", s.Len(), s.lastSeq)
	for _, k := range keys {
		out += fmt.Sprintf("%s: token %t grant %t client-before %t client-after %t\n", k,
			s.IsRevoked(k, "", "nobody", t0), s.GrantRevoked(k), s.IsRevoked("none", "", k, t0), s.IsRevoked("none", "", k, t0.Add(time.Hour)))
	}
	for _, l := range lists {
		raw, v := s.StatusList(l, 1024)
		out += fmt.Sprintf("list %s: version %d, %x\n", l, v, raw)
	}
	return out
}

// TestPreloadMatchesLoad: Preload builds the State that Load builds from the same store, for
// every kind of record and key (ids in the server's forms and other keys, merged records,
// expired ones), including records committed after it read the last Seq.
func TestPreloadMatchesLoad(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	jti, gid := idText(1), grantText(2)
	keys := []string{jti, gid, "hand-written", "grant-by-hand", "client-a", idText(3), grantText(4), "expired"}
	recs := []rescind.Revocation{
		{Kind: rescind.RevokeToken, Key: jti, ClientID: "c", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour), StatusList: "l1", StatusIdx: 7},
		{Kind: rescind.RevokeGrant, Key: gid, ClientID: "c", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{Kind: rescind.RevokeToken, Key: "hand-written", ClientID: "c", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{Kind: rescind.RevokeGrant, Key: "grant-by-hand", ClientID: "c", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{Kind: rescind.RevokeClient, Key: "client-a", ClientID: "client-a", RevokedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour)},
		{Kind: rescind.RevokeStatus, Key: "l1#9", ClientID: "c", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour), StatusList: "l1", StatusIdx: 9},
		{Kind: rescind.RevokeStatus, Key: "l2#1", ClientID: "c", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour), StatusList: "l2", StatusIdx: 1},
		{Kind: rescind.RevokeToken, Key: "expired", ClientID: "c", RevokedAt: t0, ExpiresAt: t0.Add(-time.Second)},
		{Kind: rescind.RevokeToken, Key: jti, ClientID: "c", RevokedAt: t0, ExpiresAt: t0.Add(2 * time.Hour)}, // merged
		{Kind: rescind.RevokeKey, Key: "k1", ClientID: "", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{Kind: rescind.RevokeSession, Key: "session-1", Subject: "u1", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)},
	}
	for _, r := range recs {
		if err := st.Revoke(context.Background(), []rescind.Revocation{r}); err != nil {
			t.Fatal(err)
		}
	}
	loaded := NewState()
	if _, err := loaded.Load(context.Background(), st, t0, nil); err != nil {
		t.Fatal(err)
	}
	for _, lag := range []int64{0, 3} {
		pre := NewState()
		n, err := pre.Preload(context.Background(), staleLast{st, lag}, t0)
		if err != nil || n != 9 {
			t.Fatalf("lag %d: Preload = %d, %v; want the 9 records in force (one merged, one expired)", lag, n, err)
		}
		want, got := answers(loaded, keys, []string{"l1", "l2"}), answers(pre, keys, []string{"l1", "l2"})
		if got != want {
			t.Fatalf("lag %d: Preload's state differs from Load's:\n%s\nwant:\n%s", lag, got, want)
		}
		if !pre.SessionEnded("session-1") || pre.SessionEnded("session-2") {
			t.Fatalf("lag %d: Preload's state does not hold the ended session (or holds one never ended)", lag)
		}
	}
	if !loaded.IsRevoked(jti, "", "c", t0) || !loaded.GrantRevoked("grant-by-hand") || loaded.IsRevoked("expired", "", "c", t0) || !loaded.SessionEnded("session-1") {
		t.Fatal("the reference state itself is wrong")
	}
}

// TestPreloadMillion loads 1,000,000 records generated directly in a SQLite database and checks
// that the state answers for each of them as the database says, and for none other: every
// revoked token and grant is revoked, each status list has exactly its stored entries set, fresh
// ids are not revoked, and once every record has expired pruning empties the state. It asserts
// no timing (rescind bench --preload-revocations measures start-up time and memory). Under the
// race detector it loads 20,000, in ranges of 1,000 so that the loaders run at once (CI runs it
// once more without, with the million).
func TestPreloadMillion(t *testing.T) {
	n := 1_000_000
	if raceDetector {
		n = 20_000
		defer func(old int64) { preloadMinSpan = old }(preloadMinSpan)
		preloadMinSpan = 1000
	}
	path := filepath.Join(t.TempDir(), "db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	base := time.Now().Truncate(time.Second)
	start := time.Now()
	if err := revfill.FillSQLite(context.Background(), path, revfill.Config{N: n, Now: base, ExpiresAfter: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if c, err := st.CountRevocations(context.Background()); err != nil || c != int64(n) {
		t.Fatalf("%d records stored (%v); want %d", c, err, n)
	}
	filled := time.Now()
	s := NewState()
	if got, err := s.Preload(context.Background(), st, base); err != nil || got != n {
		t.Fatalf("Preload = %d, %v; want %d", got, err, n)
	}
	loadedAt := time.Now()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("filled in %v, preloaded in %v, heap in use %.0f MiB (figures: rescind bench --preload-revocations)",
		filled.Sub(start).Round(time.Millisecond), loadedAt.Sub(filled).Round(time.Millisecond), float64(ms.HeapInuse)/(1<<20))
	if s.Len() != n {
		t.Fatalf("Len = %d; want %d", s.Len(), n)
	}

	// What the database holds, read with plain SQL, the state's answer for each.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT kind, key, status_list, status_idx FROM revocations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	lists := map[string]map[int64]bool{}
	var tokens, grants int
	for rows.Next() {
		var kind, key, list string
		var idx int64
		if err := rows.Scan(&kind, &key, &list, &idx); err != nil {
			t.Fatal(err)
		}
		switch kind {
		case "token":
			tokens++
			if !s.IsRevoked(key, "", "bench", base) {
				t.Fatalf("token %s is stored revoked, not revoked in the state", key)
			}
		case "grant":
			grants++
			if !s.GrantRevoked(key) || !s.IsRevoked("none", key, "bench", base) {
				t.Fatalf("grant %s is stored revoked, not revoked in the state", key)
			}
		default:
			t.Fatalf("a record of kind %q", kind)
		}
		if list != "" {
			if lists[list] == nil {
				lists[list] = map[int64]bool{}
			}
			lists[list][idx] = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if tokens != n-n/100 || grants != n/100 || len(lists) != (n+65535)/65536 {
		t.Fatalf("%d tokens, %d grants, %d status lists stored: not the generated mix", tokens, grants, len(lists))
	}
	for list, want := range lists {
		raw, _ := s.StatusList(list, statuslist.Size)
		set := 0
		for i := range int64(statuslist.Size) {
			if raw[i/8]&(1<<(i%8)) != 0 {
				set++
				if !want[i] {
					t.Fatalf("list %s: entry %d set, not stored", list, i)
				}
			}
		}
		if set != len(want) {
			t.Fatalf("list %s: %d entries set; %d stored", list, set, len(want))
		}
	}
	for range 1000 {
		var b [16]byte
		rand.Read(b[:])
		fresh := base64.RawURLEncoding.EncodeToString(b[:])
		if s.IsRevoked(fresh, "", "other", base) || s.GrantRevoked(stdGrantIDs.EncodeToString(b[:])) {
			t.Fatalf("a fresh id %s is revoked", fresh)
		}
	}
	// Every record expires within the hour after base + 1h.
	if got := s.Prune(base.Add(2*time.Hour + time.Second)); got < n || s.Len() != 0 {
		t.Fatalf("Prune after every expiry dropped %d, %d left; want every record gone", got, s.Len())
	}
}
