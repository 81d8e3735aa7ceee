package rescind

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// The lifecycle of a key (a sealing key of opaque access tokens, or a signing key of JWTs), and
// the rules every instance applies to the same stored facts (CreatedAt, ActivatesAt, RetiredAt)
// to agree, with no timer of its own, on which key seals or signs and which are accepted.
//
// A key is generated and published at once (a signing key appears in the JWKS); it starts to
// sign at its ActivatesAt, which a rotation sets past the JWKS cache lifetime, so that a verifier
// that caches the JWKS meets the new key id only after it has fetched the set that holds it.
// When a newer key takes over, the older one stops signing but stays published and accepted
// until every token it can have signed has expired (RetireAfter, the longest token lifetime plus
// a margin), then retires by itself. An operator retires a key at once (a compromised key):
// tokens it sealed or signed are refused from then on, and it never comes back.

// KeyState is where a key is in its lifecycle at a given moment.
type KeyState string

// Key states, as `rescind keys list` shows them.
const (
	// KeyNext is a key published (and accepted) that does not sign or seal yet.
	KeyNext KeyState = "next"
	// KeyActive is the one key of its use that signs or seals.
	KeyActive KeyState = "active"
	// KeyRetiring is a key that a newer one took over from: still published and accepted
	// until every token it can have signed or sealed has expired.
	KeyRetiring KeyState = "retiring"
	// KeySuperseded is a key that a newer one took over from before it ever signed or sealed
	// (an emergency rotation while it was next): it never was the key in force. It stays
	// published and accepted like a retiring key (an instance that had not heard of the newer
	// key may have used it), and is not the key a rotation replaced, so an operator looking for
	// the compromised key among the replaced ones does not mistake it for that key.
	KeySuperseded KeyState = "superseded"
	// KeyRetired is a key refused everywhere: retired by an operator, or past its retiring period.
	KeyRetired KeyState = "retired"
)

// RevokeKey is the kind of the Revocation written when a key is retired (Key is its id): it
// carries the retirement to event subscribers, which stop accepting what the key signed.
const RevokeKey RevocationKind = "key"

// ErrKeyInUse means a key cannot be retired because it is the one in force for its use and no
// newer key can take over: rotate first.
var ErrKeyInUse = errors.New("the key is in use and no newer key can take over from it")

// SortKeys orders keys of one use as ListKeys returns them, the order every rule below expects:
// newest first, by CreatedAt, then by ID (byte order) for equal times.
func SortKeys(keys []Key) {
	slices.SortStableFunc(keys, func(a, b Key) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
}

// tookOver reports whether k is, or is scheduled to be, the key in force from its ActivatesAt:
// a key retired before it activated never takes over.
func tookOver(k Key) bool { return k.RetiredAt.IsZero() || k.RetiredAt.After(k.ActivatesAt) }

// ActiveKey returns the index of the key in force at now among keys (one use, SortKeys order):
// the newest key that has taken over by now (ActivatesAt not after now) if it is not retired;
// if it is retired, the key that replaces it: the non-retired newer key that activates first.
// If no key has activated yet by this clock, the key in force is the non-retired key that
// activates first among those in force from their creation (ActivatesAt not after CreatedAt: the
// first key of a chain, made by an instance whose clock is ahead of this one's); a key scheduled
// to start after its creation (a chain's first key added to a running deployment, published
// first so that every cached JWKS lists it) is never in force before its ActivatesAt. It returns
// -1 if there is none. A key that a newer one took over from never becomes active again,
// whatever is retired later.
func ActiveKey(keys []Key, now time.Time) int {
	newer := len(keys) // keys[:newer] are the candidates for a replacement
	for i, k := range keys {
		if tookOver(k) && !k.ActivatesAt.After(now) {
			if k.RetiredAt.IsZero() {
				return i
			}
			newer = i
			break
		}
	}
	if newer == len(keys) {
		best := -1
		for j, k := range keys {
			if k.RetiredAt.IsZero() && !k.ActivatesAt.After(k.CreatedAt) && (best < 0 || !k.ActivatesAt.After(keys[best].ActivatesAt)) {
				best = j
			}
		}
		return best
	}
	return replacement(keys, newer)
}

// replacement returns the index, among keys[:n], of the non-retired key that activates first
// (the older one for equal times), or -1.
func replacement(keys []Key, n int) int {
	best := -1
	for j := 0; j < n; j++ {
		if keys[j].RetiredAt.IsZero() && (best < 0 || !keys[j].ActivatesAt.After(keys[best].ActivatesAt)) {
			best = j
		}
	}
	return best
}

// KeyRetires returns when keys[i] retires by itself: retireAfter past the moment the first newer
// key takes over from it (it seals or signs nothing after that moment, so by then every token it
// sealed or signed has expired). It is zero while no newer key is scheduled to take over.
func KeyRetires(keys []Key, i int, retireAfter time.Duration) time.Time {
	at := takenOver(keys, i)
	if at.IsZero() {
		return at
	}
	return at.Add(retireAfter)
}

// takenOver returns when the first key newer than keys[i] takes (or took) over, the moment
// keys[i] stops being the key in force if it was; zero if no newer key is scheduled to.
func takenOver(keys []Key, i int) time.Time {
	var at time.Time
	for j := 0; j < i; j++ {
		if k := keys[j]; tookOver(k) && (at.IsZero() || k.ActivatesAt.Before(at)) {
			at = k.ActivatesAt
		}
	}
	return at
}

// KeyStateAt returns the state of keys[i] at now (keys of one use, SortKeys order).
func KeyStateAt(keys []Key, i int, retireAfter time.Duration, now time.Time) KeyState {
	k := keys[i]
	if !k.RetiredAt.IsZero() {
		return KeyRetired
	}
	if r := KeyRetires(keys, i, retireAfter); !r.IsZero() && !now.Before(r) {
		return KeyRetired
	}
	if i == ActiveKey(keys, now) {
		return KeyActive
	}
	if at := takenOver(keys, i); !at.IsZero() && !at.After(now) {
		// A newer key has taken over: from this one if it was in force before that moment,
		// else it never was (and never will be).
		if k.ActivatesAt.Before(at) {
			return KeyRetiring
		}
		return KeySuperseded
	}
	if !k.ActivatesAt.After(now) {
		return KeyRetiring
	}
	return KeyNext
}

// KeyAccepted reports whether tokens sealed or signed by keys[i] are accepted at now (and, for
// a signing key, whether it is published): every state but retired (superseded included).
func KeyAccepted(keys []Key, i int, retireAfter time.Duration, now time.Time) bool {
	return KeyStateAt(keys, i, retireAfter, now) != KeyRetired
}

// PlanRetirement says what retiring the key id at at does to keys (one use, SortKeys order): it
// returns the key's index, and the index of the key whose ActivatesAt must be brought forward
// to at because it replaces the retired key as the one in force, or -1 if none must. It returns
// ErrNotFound if no key has that id, and ErrKeyInUse if the key is in force and no non-retired
// newer key can replace it. Retiring a retired key needs nothing (-1, nil).
func PlanRetirement(keys []Key, id string, at time.Time) (retire, activate int, err error) {
	retire = slices.IndexFunc(keys, func(k Key) bool { return k.ID == id })
	if retire < 0 {
		return -1, -1, ErrNotFound
	}
	if !keys[retire].RetiredAt.IsZero() || ActiveKey(keys, at) != retire {
		return retire, -1, nil
	}
	if activate = replacement(keys, retire); activate < 0 {
		return retire, -1, ErrKeyInUse
	}
	return retire, activate, nil
}
