package keys_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

// afterCommit is a store on which something goes wrong once RetireKey has been called: what
// happens to the request or the database after (or during) the commit.
type afterCommit struct {
	rescind.Store
	retire func(ctx context.Context, id string, rev rescind.Revocation) (string, error)

	mu     sync.Mutex
	broken bool // ListKeys fails from now on
}

func (s *afterCommit) RetireKey(ctx context.Context, id string, rev rescind.Revocation) (string, error) {
	return s.retire(ctx, id, rev)
}

func (s *afterCommit) ListKeys(ctx context.Context, use string) ([]rescind.Key, error) {
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if broken {
		return nil, errors.New("connection reset")
	}
	return s.Store.ListKeys(ctx, use)
}

func (s *afterCommit) breakDown() {
	s.mu.Lock()
	s.broken = true
	s.mu.Unlock()
}

// TestRetireTakesEffectWhateverFollowsTheCommit: once the store has committed a retirement, the
// instance that retired the key refuses its tokens before Retire returns, and tells OnRetire,
// whatever happens after the commit: the admin request going away, the database failing, or the
// commit's acknowledgement being lost. A retirement that did not commit changes nothing.
func TestRetireTakesEffectWhateverFollowsTheCommit(t *testing.T) {
	errLost := errors.New("connection lost during commit")
	for _, tc := range []struct {
		name      string
		committed bool
		retire    func(s *afterCommit, cancel context.CancelFunc) func(context.Context, string, rescind.Revocation) (string, error)
	}{
		{"the request ends at the commit", true, func(s *afterCommit, cancel context.CancelFunc) func(context.Context, string, rescind.Revocation) (string, error) {
			return func(ctx context.Context, id string, rev rescind.Revocation) (string, error) {
				a, err := s.Store.RetireKey(ctx, id, rev)
				cancel()
				return a, err
			}
		}},
		{"the database fails after the commit", true, func(s *afterCommit, cancel context.CancelFunc) func(context.Context, string, rescind.Revocation) (string, error) {
			return func(ctx context.Context, id string, rev rescind.Revocation) (string, error) {
				a, err := s.Store.RetireKey(ctx, id, rev)
				s.breakDown()
				return a, err
			}
		}},
		{"the commit's acknowledgement is lost", true, func(s *afterCommit, cancel context.CancelFunc) func(context.Context, string, rescind.Revocation) (string, error) {
			return func(ctx context.Context, id string, rev rescind.Revocation) (string, error) {
				if _, err := s.Store.RetireKey(ctx, id, rev); err != nil {
					return "", err
				}
				return "", errLost
			}
		}},
		{"the commit fails", false, func(s *afterCommit, cancel context.CancelFunc) func(context.Context, string, rescind.Revocation) (string, error) {
			return func(ctx context.Context, id string, rev rescind.Revocation) (string, error) {
				return "", errLost
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{now: time.Unix(1_800_000_000, 0)}
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := &afterCommit{Store: st}
			s.retire = tc.retire(s, cancel)
			var records []rescind.Revocation
			m, err := keys.Open(context.Background(), keys.Config{Store: s, Box: box, NewSigningKey: pooled, Now: c.Now, RetireAfter: 2 * time.Hour,
				OnRetire: func(r rescind.Revocation) { records = append(records, r) }})
			if err != nil {
				t.Fatal(err)
			}
			text, kid := sealed(t, m, c)
			c.advance(time.Second)
			if _, err := m.Rotate(context.Background(), false); err != nil {
				t.Fatal(err)
			}
			r, err := m.Retire(ctx, kid, "admin")
			_, openErr := m.Keyring().Open(text)
			if !tc.committed {
				if !errors.Is(err, errLost) || openErr != nil || len(records) != 0 {
					t.Fatalf("a retirement that did not commit: Retire err = %v, token open err = %v, OnRetire %d times; "+
						"want %v, nil, 0", err, openErr, len(records), errLost)
				}
				return
			}
			if err != nil || r.Key.State != rescind.KeyRetired {
				t.Fatalf("Retire = %+v, %v; want the key retired, no error (the retirement committed)", r, err)
			}
			if !errors.Is(openErr, token.ErrRetiredKey) {
				t.Fatalf("the retired key's token opens on the instance that retired it: %v", openErr)
			}
			if len(records) != 1 || records[0].Key != kid {
				t.Fatalf("OnRetire got %+v; want the key's record once", records)
			}
		})
	}
}

// TestRefreshAppliesRetirementsPastBadKeys: a stored key whose material cannot be opened (sealed
// under another secrets key, or damaged) does not stop a refresh from applying the retirements
// and the new keys it reads; the refresh reports it.
func TestRefreshAppliesRetirementsPastBadKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	a, b := instance(t, path, c), instance(t, path, c)
	text, kid := sealed(t, b, c)
	c.advance(time.Second)
	rot, err := a.Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Retire(ctx, kid, "admin"); err != nil {
		t.Fatal(err)
	}
	// The newest key, sorted first, cannot be opened.
	st, _ := sqlite.Open(ctx, path)
	defer st.Close()
	c.advance(time.Second)
	if err := st.CreateKey(ctx, rescind.Key{ID: "0badbad0", Use: keys.UseSeal, Algorithm: "XC20P", Sealed: []byte("garbage"),
		CreatedAt: c.Now(), ActivatesAt: c.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); !errors.Is(err, keys.ErrSecretsKeyMismatch) {
		t.Fatalf("Refresh = %v; want the key that cannot be opened reported", err)
	}
	if _, err := b.Keyring().Open(text); !errors.Is(err, token.ErrRetiredKey) {
		t.Fatalf("the retired key's token after the refresh: %v; want %v", err, token.ErrRetiredKey)
	}
	if _, kid := sealed(t, b, c); kid != rot.SealKeyID {
		t.Fatalf("seals with %s after the refresh; want the rotated key %s", kid, rot.SealKeyID)
	}
}

// TestRetireRetiredKey: retiring a retired key changes nothing and writes no record (OnRetire,
// which counts commits and wakes the event streams, is not called again).
func TestRetireRetiredKey(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	calls := 0
	m, err := keys.Open(ctx, keys.Config{Store: st, Box: box, NewSigningKey: pooled, Now: c.Now, OnRetire: func(rescind.Revocation) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	_, kid := sealed(t, m, c)
	c.advance(time.Second)
	if _, err := m.Rotate(ctx, false); err != nil {
		t.Fatal(err)
	}
	first, err := m.Retire(ctx, kid, "admin")
	if err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	again, err := m.Retire(ctx, kid, "admin")
	if err != nil || again.Key.State != rescind.KeyRetired || !again.Key.RetiredAt.Equal(first.Key.RetiredAt) {
		t.Fatalf("retiring again = %+v, %v; want the first retirement, unchanged", again, err)
	}
	if calls != 1 {
		t.Fatalf("OnRetire called %d times; want once", calls)
	}
}

// TestRefreshErrorsLogged: a refresh no caller waits for (a token naming a key the instance
// lacks) logs its failure.
func TestRefreshErrorsLogged(t *testing.T) {
	ctx := context.Background()
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := &afterCommit{Store: st}
	var log syncBuffer
	m, err := keys.Open(ctx, keys.Config{Store: s, Box: box, NewSigningKey: pooled, Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.breakDown()
	if m.RefreshSigningKey(ctx, "unknown") {
		t.Fatal("an unknown key was reported found")
	}
	if !strings.Contains(log.String(), "connection reset") {
		t.Fatalf("the failed refresh was not logged: %q", log.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
