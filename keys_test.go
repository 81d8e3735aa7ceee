package rescind

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

var k0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// at is k0 plus m minutes.
func at(m int) time.Time { return k0.Add(time.Duration(m) * time.Minute) }

// key is a key created at minute created, activating at minute act; retired at minute ret
// (ret < 0: not retired).
func key(id string, created, act, ret int) Key {
	k := Key{ID: id, CreatedAt: at(created), ActivatesAt: at(act)}
	if ret >= 0 {
		k.RetiredAt = at(ret)
	}
	return k
}

// states renders the state of every key at minute m, in SortKeys order.
func states(keys []Key, m int) string {
	SortKeys(keys)
	s := ""
	for i, k := range keys {
		s += fmt.Sprintf("%s:%s ", k.ID, KeyStateAt(keys, i, 100*time.Minute, at(m)))
	}
	return s
}

func TestKeyLifecycle(t *testing.T) {
	cases := []struct {
		name string
		keys []Key
		min  int
		want string
	}{
		{"one key", []Key{key("a", 0, 0, -1)}, 5, "a:active "},
		{"rotated, before activation", []Key{key("a", 0, 0, -1), key("b", 10, 16, -1)}, 12, "b:next a:active "},
		{"rotated, at activation", []Key{key("a", 0, 0, -1), key("b", 10, 16, -1)}, 16, "b:active a:retiring "},
		{"old key retires by itself", []Key{key("a", 0, 0, -1), key("b", 10, 16, -1)}, 116, "b:active a:retired "},
		{"old key just before that", []Key{key("a", 0, 0, -1), key("b", 10, 16, -1)}, 115, "b:active a:retiring "},
		{"two rotations pending", []Key{key("a", 0, 0, -1), key("b", 10, 16, -1), key("c", 11, 17, -1)}, 16,
			"c:next b:active a:retiring "},
		// An emergency rotation (--now) after a scheduled one: the older pending key never signs.
		// It is superseded, not retiring: it is not the key the rotation replaced (a was).
		{"--now overtakes a pending key", []Key{key("a", 0, 0, -1), key("b", 10, 16, -1), key("c", 11, 11, -1)}, 20,
			"c:active b:superseded a:retiring "},
		{"--now overtakes a pending key, before its activation", []Key{key("a", 0, 0, -1), key("b", 10, 16, -1), key("c", 11, 11, -1)}, 12,
			"c:active b:superseded a:retiring "},
		{"superseded key retires by itself", []Key{key("a", 0, 0, -1), key("b", 10, 16, -1), key("c", 11, 11, -1)}, 111,
			"c:active b:retired a:retired "},
		// A newer key scheduled to take over later than the pending one: the pending key signs
		// in between, so it is retiring once the newer one took over.
		{"pending key in force before the newer one", []Key{key("a", 0, 0, -1), key("b", 10, 12, -1), key("c", 11, 14, -1)}, 15,
			"c:active b:retiring a:retiring "},
		{"pending key retired: the old one stays", []Key{key("a", 0, 0, -1), key("b", 10, 16, 12)}, 20,
			"b:retired a:active "},
		// The active key retired with its replacement brought forward (what RetireKey stores).
		{"active retired, replacement active", []Key{key("a", 0, 0, 12), key("b", 10, 12, -1), key("c", 11, 17, -1)}, 13,
			"c:next b:active a:retired "},
		// Nothing can replace a retired key in force but a newer key (RetireKey refuses otherwise).
		{"no replacement", []Key{key("a", 0, 0, -1), key("b", 10, 16, 20)}, 21, "b:retired a:retiring "},
		// Another instance whose clock is behind the replacement's new activation still uses it,
		// never the key the retired one took over from.
		{"replacement before its activation", []Key{key("a", 0, 0, -1), key("b", 20, 25, 30), key("c", 28, 30, -1)}, 29,
			"c:active b:retired a:retiring "},
		{"no key activated yet (clock behind)", []Key{key("a", 10, 10, -1)}, 5, "a:active "},
		// A chain's first key scheduled after its creation (added to a running deployment, so
		// that every cached JWKS lists it first): never in force before its activation, by any
		// clock; then in force (re-audit 3B #2).
		{"first key scheduled, before its activation", []Key{key("a", 10, 16, -1)}, 12, "a:next "},
		{"first key scheduled, at its activation", []Key{key("a", 10, 16, -1)}, 16, "a:active "},
		{"first key scheduled, then an emergency rotation", []Key{key("a", 10, 16, -1), key("b", 11, 11, -1)}, 12,
			"b:active a:superseded "},
		{"every key retired", []Key{key("a", 0, 0, 5)}, 6, "a:retired "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := states(c.keys, c.min); got != c.want {
				t.Errorf("at minute %d: %s, want %s", c.min, got, c.want)
			}
		})
	}
}

func TestPlanRetirement(t *testing.T) {
	base := func() []Key {
		ks := []Key{key("a", 0, 0, -1), key("b", 10, 16, -1), key("c", 11, 17, -1)}
		SortKeys(ks)
		return ks
	}
	cases := []struct {
		name, id   string
		min        int
		keys       []Key
		activate   string
		err        error
		stateAfter string
	}{
		{"retiring key: nothing to replace", "a", 20, base(), "", nil, "c:active b:retiring a:retired "},
		{"pending key: nothing to replace", "c", 12, base(), "", nil, "c:retired b:next a:active "},
		// The active key is replaced by the pending key that activates first.
		{"active key replaced", "a", 12, base(), "b", nil, "c:next b:active a:retired "},
		{"only key", "a", 1, []Key{key("a", 0, 0, -1)}, "", ErrKeyInUse, ""},
		// An older key cannot take over again: retiring the newest active key needs a newer one.
		{"older keys do not replace", "b", 20, []Key{key("a", 0, 0, -1), key("b", 10, 16, -1)}, "", ErrKeyInUse, ""},
		{"unknown", "z", 1, base(), "", ErrNotFound, ""},
		{"already retired", "a", 1, []Key{key("a", 0, 0, 0), key("b", 0, 0, -1)}, "", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			SortKeys(c.keys)
			i, j, err := PlanRetirement(c.keys, c.id, at(c.min))
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			got := ""
			if j >= 0 {
				got = c.keys[j].ID
			}
			if got != c.activate {
				t.Fatalf("activate %q, want %q", got, c.activate)
			}
			if err != nil || c.stateAfter == "" {
				return
			}
			// Apply the plan as a store does, and check the states a minute later.
			c.keys[i].RetiredAt = at(c.min)
			if j >= 0 && c.keys[j].ActivatesAt.After(at(c.min)) {
				c.keys[j].ActivatesAt = at(c.min)
			}
			if got := states(c.keys, c.min+1); got != c.stateAfter {
				t.Errorf("after: %s, want %s", got, c.stateAfter)
			}
		})
	}
}
