package main

// The model-based test of the revocation invariant (issue 11): a random sequence of operations
// runs against the real server wiring (Main, with fake clocks), and after every step the
// server's answers are compared with a reference model that is nothing but maps. The model
// knows, for every token it has seen, which revocations cover it and when it expires; the
// server must refuse every token the model calls revoked until its exp plus the clock skew,
// whatever happened since (restarts with other settings, ttl changes, janitor sweeps, key
// rotation, deletions, replays from the right and the wrong client, revoking again), and must
// accept every token the model calls live.
//
// Each instance has its own clock: with two instances (PostgreSQL) they differ by up to the
// clock skew, and drift within it, so tokens carry the iat and exp of the instance that issued
// them, each janitor deletes by its own clock, and revoke-all --client on one instance must
// cover what the other, ahead of it, issued before. What is checked after every step: each
// instance's in-memory state and status list bits, introspection (of the tokens the step touched
// and a random one; of all every 25 steps), and a long-lived resource middleware with push
// (clock: the earliest instance's) on every tracked JWT, client-wide cut-offs included; every
// 5 steps, the status lists as each instance publishes them. Secrets are rotated and used on
// either instance.
//
// go test ./cmd/rescind -run TestModel runs fixed seeds; -seed N and -steps N run one seed
// longer. A failure prints the failing sequence, minimised by delta debugging.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/pgtest"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/resource"
	"github.com/rescind/rescind/token"
)

var (
	modelSeed  = flag.Uint64("seed", 0, "model tests: run only this seed (0: the fixed seeds)")
	modelSteps = flag.Int("steps", 0, "model tests: steps per seed (0: 500 on SQLite, 120 on PostgreSQL)")
)

// modelSeeds returns the seeds and steps to run: the fixed ones, or those of -seed and -steps.
func modelSeeds(n, steps int) ([]uint64, int) {
	if *modelSteps > 0 {
		steps = *modelSteps
	}
	if *modelSeed != 0 {
		return []uint64{*modelSeed}, steps
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds, steps
}

// TestModelSQLite runs the model on one instance with SQLite: 20 seeds of 500 steps.
func TestModelSQLite(t *testing.T) {
	seeds, steps := modelSeeds(20, 500)
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			runModel(t, modelConfig{seed: seed, steps: steps, instances: 1})
		})
	}
}

// TestModelPostgres runs the model on two instances sharing one PostgreSQL database: requests
// go to either, and each is checked (allowing the propagation bound for the other one).
func TestModelPostgres(t *testing.T) {
	pgtest.NewDatabase(t) // skips, or fails when postgres is required, before any subtest
	seeds, steps := modelSeeds(3, 120)
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			runModel(t, modelConfig{seed: seed, steps: steps, instances: 2, postgres: true})
		})
	}
}

type modelConfig struct {
	seed      uint64
	steps     int
	instances int
	postgres  bool
}

// runModel runs one seed; on failure it minimises the sequence and fails t with it.
func runModel(t *testing.T, cfg modelConfig) {
	ops, err := driveModel(t, cfg, nil)
	if err == nil {
		return
	}
	var first *modelFailure
	if !errors.As(err, &first) {
		t.Fatalf("seed %d: %v", cfg.seed, err)
	}
	ops = ops[:first.step+1]
	t.Logf("seed %d failed at step %d: %v; minimising %d steps", cfg.seed, first.step, err, len(ops))
	deadline := time.Now().Add(5 * time.Minute)
	runs := 0
	minimal := ddmin(ops, func(cand []op) bool {
		if time.Now().After(deadline) || runs >= 400 {
			return false
		}
		runs++
		_, err := driveModel(t, cfg, cand)
		var f *modelFailure
		return errors.As(err, &f) && f.kind == first.kind
	})
	_, err = driveModel(t, cfg, minimal)
	var lines []string
	for i, o := range minimal {
		lines = append(lines, fmt.Sprintf("  %3d. %s", i+1, o))
	}
	t.Fatalf("seed %d: %v\n\nfailing sequence, minimised from %d steps to %d (%d replays):\n%s\n\nrerun: go test ./cmd/rescind -run '%s' -seed %d -steps %d",
		cfg.seed, err, first.step+1, len(minimal), runs, strings.Join(lines, "\n"), t.Name()[:strings.Index(t.Name(), "/")], cfg.seed, cfg.steps)
}

// ddmin removes chunks of steps while the sequence still fails (Zeller's delta debugging,
// complement steps only).
func ddmin(ops []op, fails func([]op) bool) []op {
	n := 2
	for len(ops) >= 2 {
		chunk := (len(ops) + n - 1) / n
		reduced := false
		for start := 0; start < len(ops); start += chunk {
			cand := append(slices.Clone(ops[:start]), ops[min(start+chunk, len(ops)):]...)
			if fails(cand) {
				ops, n, reduced = cand, max(n-1, 2), true
				break
			}
		}
		if !reduced {
			if n >= len(ops) {
				break
			}
			n = min(2*n, len(ops))
		}
	}
	return ops
}

// modelFailure is a disagreement between the server and the model.
type modelFailure struct {
	step int
	// kind classifies it, so minimisation keeps the same failure: "revoked-but-active",
	// "live-but-inactive" or "unexpected-answer".
	kind string
	msg  string
}

func (f *modelFailure) Error() string { return fmt.Sprintf("step %d: %s: %s", f.step+1, f.kind, f.msg) }

// The operations.
type opKind int

const (
	opNewClient opKind = iota
	opNewUser
	opClientCredentials
	opAuthorize
	opRedeem
	opRefresh
	opRevoke
	opRevokeAll
	opDeleteClient
	opDeleteUser
	opAdvance
	opJanitor
	opRestart
	opRotateKeys
	opUpdateClient
	opRotateSecret
	opRetireKey
	opDrift
)

var opNames = [...]string{"new-client", "new-user", "client-credentials", "authorize", "redeem", "refresh", "revoke",
	"revoke-all", "delete-client", "delete-user", "advance", "janitor", "restart", "rotate-keys", "update-client", "rotate-secret", "retire-key", "drift"}

func (k opKind) String() string { return opNames[k] }

// op is one step. Entities are named by the step that made them, so that a step whose maker
// was removed (by minimisation) is skipped rather than pointed at something else.
type op struct {
	kind   opKind
	inst   int    // the instance that serves it
	name   string // what it creates
	client string // client acted for or on
	user   string
	target string // token or code acted on
	by     string // the client presenting a credential
	good   bool   // opRedeem: the right PKCE verifier
	ttl    time.Duration
	jwt    bool
	d      time.Duration
	flag   bool // opRestart: revoke_grant_with_access_token; opClientCredentials: with the secret a rotation replaced; opRotateKeys: --now
}

func (o op) String() string {
	at := ""
	if o.inst > 0 {
		at = fmt.Sprintf(" [instance %d]", o.inst)
	}
	switch o.kind {
	case opNewClient:
		f := "opaque"
		if o.jwt {
			f = "jwt"
		}
		return fmt.Sprintf("create client %s (token ttl %s, %s)%s", o.name, ttlName(o.ttl), f, at)
	case opNewUser:
		return fmt.Sprintf("create user %s%s", o.name, at)
	case opClientCredentials:
		if o.flag {
			return fmt.Sprintf("client %s gets %s by client_credentials with its replaced secret%s", o.client, o.name, at)
		}
		return fmt.Sprintf("client %s gets %s by client_credentials%s", o.client, o.name, at)
	case opAuthorize:
		return fmt.Sprintf("user %s authorizes client %s: code %s%s", o.user, o.client, o.name, at)
	case opRedeem:
		v := "right"
		if !o.good {
			v = "wrong"
		}
		return fmt.Sprintf("client %s redeems code %s with the %s verifier (-> %s, r%s)%s", o.by, o.target, v, o.name, o.name[1:], at)
	case opRefresh:
		return fmt.Sprintf("client %s refreshes with %s (-> %s, r%s)%s", o.by, o.target, o.name, o.name[1:], at)
	case opRevoke:
		return fmt.Sprintf("client %s revokes %s%s", o.by, o.target, at)
	case opRevokeAll:
		var w []string
		if o.user != "" {
			w = append(w, "--user "+o.user)
		}
		if o.client != "" {
			w = append(w, "--client "+o.client)
		}
		return fmt.Sprintf("revoke-all %s%s", strings.Join(w, " "), at)
	case opDeleteClient:
		return fmt.Sprintf("delete client %s%s", o.client, at)
	case opDeleteUser:
		return fmt.Sprintf("delete user %s%s", o.user, at)
	case opAdvance:
		return fmt.Sprintf("advance the clock %s", o.d)
	case opJanitor:
		return "run the janitor on every instance"
	case opRestart:
		return fmt.Sprintf("restart instance %d with --access-token-ttl %s --revoke-grant-with-access-token=%t", o.inst, o.ttl, o.flag)
	case opRotateKeys:
		if o.flag {
			return fmt.Sprintf("keys rotate --now%s", at)
		}
		return fmt.Sprintf("keys rotate%s", at)
	case opRetireKey:
		return fmt.Sprintf("keys retire (the %s key)%s", o.target, at)
	case opUpdateClient:
		return fmt.Sprintf("client update %s --token-ttl %s%s", o.client, ttlName(o.ttl), at)
	case opRotateSecret:
		return fmt.Sprintf("client rotate-secret %s --overlap %s%s", o.client, o.d, at)
	case opDrift:
		return fmt.Sprintf("instance %d's clock drifts %s ahead", o.inst, o.d)
	}
	return fmt.Sprintf("op %d", o.kind)
}

func ttlName(d time.Duration) string {
	if d == 0 {
		return "default"
	}
	return d.String()
}

// The reference model: maps and plain values.

type mClient struct {
	name, id, secret string
	ttl, prevTTL     time.Duration // prevTTL: before the last update (another instance may not know yet)
	jwt              bool
	deleted          bool
	cut              time.Time // the cut-off of the last revoke-all --client, as answered
	cutSeq           int       // revoke-all --client revokes the tokens issued before it (their seq is lower)
	oldSecret        string    // replaced by the last rotation, accepted until oldUntil
	oldUntil         time.Time
}

type mUser struct {
	name, username, password string
	deleted                  bool
	jar                      http.CookieJar
}

type mGrant struct {
	name, client, user string
	revoked            bool
	realID             string
}

type mCode struct {
	name, text, verifier string
	client, user, grant  string
	used                 bool
	exp                  time.Time
	purged               bool // the janitor deleted it (expired more than the skew ago)
}

type mToken struct {
	name, text    string
	refresh       bool
	client, grant string
	jwt           bool
	iat, exp      time.Time
	revoked       bool // by its own revocation (access tokens)
	used          bool // refresh tokens: rotated
	// As the server reads it (access tokens).
	jti, gid, clientID string
	kid                string // the key that sealed or signed it
	// rsText is the same access token signed RS256 by the issuing instance (keys.SignWith: the
	// RS256 key chain, made on first need), of key rsKid: it is covered by what covers the
	// token, and refused once rsKid is retired. Empty for most tokens.
	rsText, rsKid string
	list          string
	idx           int64
	deadSince     int // step from which it can never be active again; -1 while it may be
	seq           int // its place in issue order
}

type refModel struct {
	clients map[string]*mClient
	users   map[string]*mUser
	grants  map[string]*mGrant
	active  map[[2]string]string // (client, user) -> the grant a new authorization joins
	codes   map[string]*mCode
	tokens  map[string]*mToken
	order   []string        // token names, in issue order
	retired map[string]bool // keys retired by an operator: what they sealed or signed is refused
	skew    time.Duration
	// rotatedNow is when (on the base clock) keys were last rotated with --now: the new key signs
	// at once, and a verifier that refetches the JWKS on an unknown kid at most once a second
	// (the resource middleware) may refuse its tokens for up to that second (documented).
	rotatedNow time.Time
	rsKids     map[string]bool // the RS256 keys the model's tokens were signed with
}

func newModel() *refModel {
	return &refModel{clients: map[string]*mClient{}, users: map[string]*mUser{}, grants: map[string]*mGrant{},
		active: map[[2]string]string{}, codes: map[string]*mCode{}, tokens: map[string]*mToken{}, skew: time.Minute,
		retired: map[string]bool{}, rsKids: map[string]bool{}}
}

// covered reports whether a revocation the model knows of covers the access token t.
func (m *refModel) covered(t *mToken) bool {
	if t.revoked {
		return true
	}
	if t.grant != "" && m.grants[t.grant].revoked {
		return true
	}
	// revoke-all --client revokes every token of the client issued before it, whichever
	// instance issued it and whatever its clock said (the server must place its cut-off so).
	c := m.clients[t.client]
	return c.deleted || t.seq < c.cutSeq
}

// cutOff reports whether a token issued to c at now would be covered by c's cut-off (its iat
// as the token carries it: to the second in a JWT): the token endpoint refuses to issue it.
func (m *refModel) cutOff(c *mClient, now time.Time) bool {
	iat := now
	if c.jwt {
		iat = time.Unix(now.Unix(), 0)
	}
	return !c.deleted && !c.cut.IsZero() && !iat.After(c.cut)
}

// mwRefuses reports whether a resource server with push, whose clock reads now, must refuse the
// JWT t: expired by its clock (no leeway), or covered by any revocation (push carries client
// cut-offs too), or signed by a retired key.
func (m *refModel) mwRefuses(t *mToken, now time.Time) bool {
	return now.Unix() >= t.exp.Unix() || m.covered(t) || m.retired[t.kid]
}

// inStatusList reports whether the token's status list entry must be set: the status list
// carries token and grant revocations, not client-wide cut-offs (a documented limit).
func (m *refModel) inStatusList(t *mToken) bool {
	return t.revoked || (t.grant != "" && m.grants[t.grant].revoked)
}

// live reports whether the token must be accepted at now.
func (m *refModel) live(t *mToken, now time.Time) bool {
	if t.refresh {
		return !t.used && !m.grants[t.grant].revoked
	}
	return now.Before(t.exp) && !m.covered(t) && !m.retired[t.kid]
}

func (m *refModel) revokeGrant(name string) {
	if g := m.grants[name]; g != nil && !g.revoked {
		g.revoked = true
		for k, v := range m.active {
			if v == name {
				delete(m.active, k)
			}
		}
	}
}

// The world: the server instances, the fake clock, and the clients that talk to them.

// fakeClock is the base clock of a run, and each instance's offset from it: the instances'
// clocks differ by at most the clock skew (--clock-skew), as the clock bound requires.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	offs []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// At returns instance i's clock.
func (c *fakeClock) At(i int) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t.Add(c.offs[i])
}

// Of returns instance i's clock as a function.
func (c *fakeClock) Of(i int) func() time.Time { return func() time.Time { return c.At(i) } }

// Bounds returns the earliest and the latest of the instances' clocks. A resource server's clock
// (the middleware's) is the earliest: no more than the skew behind any instance's.
func (c *fakeClock) Bounds() (earliest, latest time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lo, hi := c.offs[0], c.offs[0]
	for _, o := range c.offs {
		lo, hi = min(lo, o), max(hi, o)
	}
	return c.t.Add(lo), c.t.Add(hi)
}

// Drift moves instance i's clock forward by d, and reports whether it did: it does not if that
// would put it more than skew ahead of another instance's.
func (c *fakeClock) Drift(i int, d, skew time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for j, o := range c.offs {
		if j != i && c.offs[i]+d-o > skew {
			return false
		}
	}
	c.offs[i] += d
	return true
}

// earliest returns the earliest of the instances' clocks.
func (c *fakeClock) earliest() time.Time { lo, _ := c.Bounds(); return lo }

// latest returns the latest of the instances' clocks.
func (c *fakeClock) latest() time.Time { _, hi := c.Bounds(); return hi }

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type instSettings struct {
	ttl     time.Duration
	cascade bool
}

// modelStats says what a run exercised.
type modelStats struct {
	ops                                map[opKind]int
	access, jwt, refresh, revoked      int
	maxTracked, checks, introspections int
	published                          int // status lists fetched as published
	pushWaits                          int // middleware checks repeated while push caught up
	rs256, rs256Retired                int // RS256 copies of access tokens, RS256 keys retired
}

func (s modelStats) String() string {
	return fmt.Sprintf("%d access tokens (%d JWT), %d refresh tokens, %d revoked when checked last; %d checks, %d introspections, %d published status lists read, %d middleware checks repeated while push caught up, at most %d tokens tracked at once; %d RS256 copies of access tokens checked, %d RS256 keys retired; steps by kind %v",
		s.access, s.jwt, s.refresh, s.revoked, s.checks, s.introspections, s.published, s.pushWaits, s.maxTracked, s.rs256, s.rs256Retired, s.ops)
}

// cachedList is a status list as the state rendered it, and the version it had.
type cachedList struct {
	version uint64
	raw     []byte
}

type world struct {
	t       *testing.T
	cfg     modelConfig
	rng     *mrand.Rand
	clock   *fakeClock
	dirs    []string
	dsn     string
	insts   []*Main
	logs    []*syncBuffer
	set     []instSettings
	hc      *http.Client
	m       *refModel
	witness admin.ClientInfo // a client that is never revoked, to introspect a deleted client's tokens
	addrs   []string         // each instance listens on the same address across restarts
	lists   map[string]cachedList
	replay  bool
	step    int
	stats   modelStats
	touched []string // tokens the current step made or acted on
	// mw is a resource server with push (the event stream of instance 0, the issuer), whose
	// clock is the earliest of the instances'.
	mw *resource.Middleware
}

var modelHash = secret.Params{Memory: 64, Time: 1, Threads: 1}

// modelDir is where the model's databases go: memory (/dev/shm) when there is one, since the
// model tests what is revoked, not how fast fsync is (the crash tests cover durability).
func modelDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return ""
}

// driveModel runs one sequence: generated from cfg.seed when replay is nil, else replay. It
// returns the steps run and the first failure.
func driveModel(t *testing.T, cfg modelConfig, replay []op) ([]op, error) {
	w := &world{t: t, cfg: cfg, rng: mrand.New(mrand.NewPCG(cfg.seed, 0x5eed)), m: newModel(), replay: replay != nil,
		clock: &fakeClock{t: time.Now().Truncate(time.Second), offs: make([]time.Duration, cfg.instances)}, lists: map[string]cachedList{}}
	w.hc = &http.Client{Transport: inProcess{w}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer w.close()
	if cfg.postgres {
		w.dsn = pgtest.NewDatabase(t)
	}
	// The clock skew (the janitor's grace) is fixed for a run: records are in force until their
	// tokens' exp plus the skew of the moment, and a larger skew set later does not revive what
	// a sweep under the smaller one deleted.
	w.m.skew = []time.Duration{time.Second, time.Minute, 5 * time.Minute}[cfg.seed%3]
	// With several instances their clocks differ, by up to the skew: the second is ahead of
	// the first or behind it.
	for i := 1; i < cfg.instances; i++ {
		w.clock.offs[i] = []time.Duration{w.m.skew, -w.m.skew, w.m.skew / 2, -w.m.skew / 2}[(cfg.seed/3+uint64(i-1))%4]
	}
	for i := range cfg.instances {
		d, err := os.MkdirTemp(modelDir(), "rsm")
		if err != nil {
			return nil, err
		}
		w.dirs = append(w.dirs, d)
		w.logs = append(w.logs, &syncBuffer{})
		w.insts = append(w.insts, nil)
		w.set = append(w.set, instSettings{ttl: time.Hour})
		w.addrs = append(w.addrs, freePort(t))
		if err := w.start(i); err != nil {
			return nil, err
		}
	}
	var err error
	// The witness is a resource server for every audience: it may introspect every token, and
	// its event stream carries every revocation.
	if w.witness, err = w.admin(0).CreateClient(context.Background(), admin.CreateClientRequest{Name: "witness", ResourceServer: true}); err != nil {
		return nil, err
	}
	if err := w.subscribe(); err != nil {
		return nil, err
	}
	var ops []op
	if replay == nil {
		for i := 0; i < 6; i++ { // a few clients and users to start with
			o := op{kind: opNewClient, name: fmt.Sprintf("c%d", i), ttl: []time.Duration{0, time.Hour, 24 * time.Hour}[i%3], jwt: i%2 == 1}
			if i >= 4 {
				o = op{kind: opNewUser, name: fmt.Sprintf("u%d", i)}
			}
			ops = append(ops, o)
		}
		for len(ops) < cfg.steps {
			ops = append(ops, op{}) // generated when reached
		}
	} else {
		ops = replay
	}
	defer func() {
		if replay == nil {
			t.Logf("%s", w.stats)
		}
	}()
	for i := range ops {
		w.step = i
		if replay == nil && i >= 6 {
			ops[i] = w.generate(fmt.Sprint(i))
		}
		w.touched = w.touched[:0]
		if err := w.exec(ops[i]); err != nil {
			return ops, w.fail(err)
		}
		if w.stats.ops == nil {
			w.stats.ops = map[opKind]int{}
		}
		w.stats.ops[ops[i].kind]++
		if err := w.check(i == len(ops)-1 || i%25 == 24); err != nil {
			return ops, w.fail(err)
		}
	}
	return ops, nil
}

// subscribe starts the resource middleware with push, subscribed to instance 0's event stream
// from the start (so a new one misses nothing).
func (w *world) subscribe() error {
	if w.mw != nil {
		w.mw.Close()
	}
	var err error
	w.mw, err = resource.New(context.Background(), resource.Config{Issuer: w.insts[0].Issuer, ClientID: w.witness.ClientID,
		ClientSecret: w.witness.ClientSecret, Push: true, Now: w.clock.earliest, HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return err
}

func (w *world) fail(err error) error {
	var f *modelFailure
	if errors.As(err, &f) {
		f.step = w.step
		return f
	}
	return &modelFailure{step: w.step, kind: "error", msg: err.Error()}
}

func failf(kind, format string, args ...any) error {
	return &modelFailure{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func (w *world) close() {
	if w.mw != nil {
		w.mw.Close()
	}
	for _, m := range w.insts {
		if m != nil {
			m.Close()
		}
	}
	for _, d := range w.dirs {
		os.RemoveAll(d)
	}
}

// start runs instance i with its settings.
func (w *world) start(i int) error {
	st := map[string]string{}
	for _, s := range settingsTable {
		st[s.key] = s.def
	}
	st["addr"] = w.addrs[i]
	// One issuer for every instance, as behind a load balancer: JWTs name it, and their status
	// list URIs point at it.
	st["issuer"] = "http://" + w.addrs[0]
	st["data_dir"] = filepath.Join(w.dirs[i], "data")
	st["log_level"] = "warn"
	st["access_token_ttl"] = w.set[i].ttl.String()
	st["revoke_grant_with_access_token"] = fmt.Sprint(w.set[i].cascade)
	st["refresh_token_ttl"] = "8760h"
	st["janitor_interval"] = "24h" // sweeps are steps of the sequence
	st["poll_interval"] = "50ms"
	st["auth_failure_burst"] = "100000"
	st["clock_skew"] = w.m.skew.String()
	if w.cfg.postgres {
		st["db"] = w.dsn
		st["secrets_key"] = strings.Repeat("model-secret-", 3)
	}
	cfg := Config{sources: map[string]string{}}
	for k, v := range st {
		cfg.sources[k] = "the model"
		if v == "" {
			continue
		}
		if _, err := cfg.parseInto(k, v); err != nil {
			return fmt.Errorf("setting %s: %w", k, err)
		}
	}
	m := &Main{Config: cfg, LogOutput: w.logs[i], Now: w.clock.Of(i), HashParams: modelHash, NewSigningKey: pooledSigningKey}
	if err := m.Run(context.Background()); err != nil {
		return fmt.Errorf("starting instance %d: %w", i, err)
	}
	w.insts[i] = m
	return nil
}

func (w *world) base(i int) string { return "http://" + w.addrs[i] }

var (
	rsaPoolOnce sync.Once
	rsaPool     []crypto.Signer
	rsaPoolErr  error
	rsaPoolNext atomic.Uint64
)

// pooledSigningKey is token.NewSigningKey, but an RS256 key reuses one of three RSA keys
// generated once (a rotation would otherwise spend half a second generating one): the model
// tells keys apart by kid, as the server does.
func pooledSigningKey(kid, alg string, created time.Time) (token.SigningKey, error) {
	if alg != token.AlgRS256 {
		return token.NewSigningKey(kid, alg, created)
	}
	rsaPoolOnce.Do(func() {
		for range 3 {
			k, err := token.NewSigningKey("", token.AlgRS256, created)
			if err != nil {
				rsaPoolErr = err
				return
			}
			rsaPool = append(rsaPool, k.Private)
		}
	})
	if rsaPoolErr != nil {
		return token.SigningKey{}, rsaPoolErr
	}
	return token.SigningKey{ID: kid, Alg: alg, Private: rsaPool[rsaPoolNext.Add(1)%3], CreatedAt: created}, nil
}

func (w *world) admin(i int) *admin.Client {
	return &admin.Client{BaseURL: fmt.Sprintf("http://admin-%d", i), HTTP: w.hc}
}

// inProcess serves each request with the handler of the instance it is addressed to (its
// OAuth address, or "admin-N" for its admin API), in process: the real handlers, without the
// network, which would only slow the model down.
type inProcess struct{ w *world }

func (p inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	var h http.Handler
	for i, a := range p.w.addrs {
		if m := p.w.insts[i]; m != nil && (req.URL.Host == a || req.URL.Host == fmt.Sprintf("admin-%d", i)) {
			h = m.handler // the OAuth endpoints and pages
			if req.URL.Host != a {
				h = m.adminHandler // the admin API on its socket
			}
		}
	}
	if h == nil {
		return nil, fmt.Errorf("no instance serves %s", req.URL.Host)
	}
	in := req.Clone(req.Context())
	in.RequestURI, in.RemoteAddr, in.Host = req.URL.RequestURI(), "127.0.0.1:40000", req.URL.Host
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, in)
	res := rec.Result()
	res.Request = req
	return res, nil
}

// The generator picks the next operation from the model's state.

func pick[T any](rng *mrand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func (w *world) names(kind string, keep func(string) bool) []string {
	var out []string
	switch kind {
	case "client":
		for n := range w.m.clients {
			if keep(n) {
				out = append(out, n)
			}
		}
	case "user":
		for n := range w.m.users {
			if keep(n) {
				out = append(out, n)
			}
		}
	case "code":
		for n := range w.m.codes {
			if keep(n) {
				out = append(out, n)
			}
		}
	case "token":
		for _, n := range w.m.order {
			if keep(n) {
				out = append(out, n)
			}
		}
	}
	sort.Strings(out) // map order must not change what a seed does
	return out
}

func (w *world) generate(name string) op {
	m, rng := w.m, w.rng
	inst := rng.IntN(w.cfg.instances)
	liveClients := w.names("client", func(n string) bool { return !m.clients[n].deleted })
	anyClient := func() string {
		if rng.IntN(10) == 0 || len(liveClients) == 0 {
			return pick(rng, w.names("client", func(string) bool { return true }))
		}
		return pick(rng, liveClients)
	}
	liveUsers := w.names("user", func(n string) bool { return !m.users[n].deleted })
	now := w.clock.At(inst)
	for {
		switch r := rng.IntN(100); {
		case r < 11:
			return op{kind: opClientCredentials, inst: inst, name: "t" + name, client: anyClient()}
		case r < 12:
			rotated := w.names("client", func(n string) bool { return m.clients[n].oldSecret != "" })
			if len(rotated) == 0 {
				continue
			}
			return op{kind: opClientCredentials, inst: inst, name: "t" + name, client: pick(rng, rotated), flag: true}
		case r < 20 && len(liveUsers) > 0 && len(liveClients) > 0:
			u := pick(rng, liveUsers)
			if rng.IntN(15) == 0 { // a stale session of a deleted user
				if gone := w.names("user", func(n string) bool { return m.users[n].deleted }); len(gone) > 0 {
					u = pick(rng, gone)
				}
			}
			return op{kind: opAuthorize, inst: inst, name: "k" + name, client: pick(rng, liveClients), user: u}
		case r < 30:
			codes := w.names("code", func(n string) bool { return !m.codes[n].used && now.Before(m.codes[n].exp) })
			if len(codes) == 0 {
				continue
			}
			k := pick(rng, codes)
			return op{kind: opRedeem, inst: inst, name: "t" + name, target: k, by: m.codes[k].client, good: true}
		case r < 36:
			codes := w.names("code", func(string) bool { return true })
			if len(codes) == 0 {
				continue
			}
			k := pick(rng, codes)
			o := op{kind: opRedeem, inst: inst, name: "t" + name, target: k, by: m.codes[k].client, good: true}
			switch rng.IntN(3) {
			case 0:
				o.by = anyClient()
			case 1:
				o.good = false
			}
			return o
		case r < 45:
			rts := w.names("token", func(n string) bool { t := m.tokens[n]; return t.refresh && m.live(t, now) })
			if len(rts) == 0 {
				continue
			}
			rt := pick(rng, rts)
			return op{kind: opRefresh, inst: inst, name: "t" + name, target: rt, by: m.tokens[rt].client}
		case r < 49:
			rts := w.names("token", func(n string) bool { return m.tokens[n].refresh })
			if len(rts) == 0 {
				continue
			}
			rt := pick(rng, rts)
			o := op{kind: opRefresh, inst: inst, name: "t" + name, target: rt, by: m.tokens[rt].client}
			if rng.IntN(2) == 0 {
				o.by = anyClient()
			}
			return o
		case r < 60:
			toks := w.names("token", func(n string) bool { return m.live(m.tokens[n], now) || rng.IntN(4) == 0 })
			if len(toks) == 0 {
				continue
			}
			tk := pick(rng, toks)
			o := op{kind: opRevoke, inst: inst, target: tk, by: m.tokens[tk].client}
			if rng.IntN(5) == 0 {
				o.by = anyClient()
			}
			return o
		case r < 64:
			o := op{kind: opRevokeAll, inst: inst}
			switch rng.IntN(3) {
			case 0:
				if len(liveUsers) == 0 {
					continue
				}
				o.user = pick(rng, liveUsers)
			case 1:
				o.client = anyClient()
			case 2:
				if len(liveUsers) == 0 {
					continue
				}
				o.user, o.client = pick(rng, liveUsers), anyClient()
			}
			return o
		case r < 66:
			if len(liveClients) < 3 {
				return op{kind: opNewClient, inst: inst, name: "c" + name, ttl: pick(rng, []time.Duration{0, time.Second, time.Minute, time.Hour, 24 * time.Hour}), jwt: rng.IntN(2) == 0}
			}
			return op{kind: opDeleteClient, inst: inst, client: pick(rng, liveClients)}
		case r < 68:
			return op{kind: opNewClient, inst: inst, name: "c" + name, ttl: pick(rng, []time.Duration{0, time.Second, time.Minute, time.Hour, 24 * time.Hour}), jwt: rng.IntN(2) == 0}
		case r < 69:
			if len(liveUsers) < 2 {
				return op{kind: opNewUser, inst: inst, name: "u" + name}
			}
			return op{kind: opDeleteUser, inst: inst, user: pick(rng, liveUsers)}
		case r < 70:
			return op{kind: opNewUser, inst: inst, name: "u" + name}
		case r < 82:
			if w.cfg.instances > 1 && rng.IntN(6) == 0 {
				return op{kind: opDrift, inst: inst, d: pick(rng, []time.Duration{time.Second, 10 * time.Second, m.skew / 2, m.skew})}
			}
			return op{kind: opAdvance, d: pick(rng, []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 61 * time.Second,
				90 * time.Second, 5 * time.Minute, time.Hour, 6 * time.Hour, 25 * time.Hour})}
		case r < 90:
			return op{kind: opJanitor}
		case r < 92:
			return op{kind: opRestart, inst: inst, ttl: pick(rng, []time.Duration{time.Second, 30 * time.Second, 5 * time.Minute, time.Hour, 24 * time.Hour}),
				flag: rng.IntN(3) == 0}
		case r < 96:
			return op{kind: opUpdateClient, inst: inst, client: anyClient(), ttl: pick(rng, []time.Duration{0, time.Second, time.Minute, time.Hour, 24 * time.Hour})}
		case r < 98:
			return op{kind: opRotateSecret, inst: inst, client: anyClient(), d: pick(rng, []time.Duration{0, 30 * time.Second, time.Hour})}
		case r < 99:
			return op{kind: opRotateKeys, inst: inst, flag: rng.IntN(2) == 0}
		case r < 100:
			return op{kind: opRetireKey, inst: inst, target: pick(rng, []string{"active enc", "active sig", "next sig", "retiring enc", "retiring sig", "superseded sig",
				"active sig RS256", "next sig RS256", "retiring sig RS256", "superseded sig RS256"})}
		}
	}
}

// exec runs one operation and checks its immediate answer against the model.

func (w *world) exec(o op) error {
	m := w.m
	ctx := context.Background()
	if o.inst >= len(w.insts) {
		o.inst = 0
	}
	now := w.clock.At(o.inst) // the clock of the instance that serves the step
	switch o.kind {
	case opNewClient:
		req := admin.CreateClientRequest{Name: o.name, Scope: "read write", RedirectURIs: []string{"http://127.0.0.1:9/cb"},
			GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"}, TokenTTL: int64(o.ttl / time.Second)}
		if o.jwt {
			req.TokenFormat = "jwt"
		}
		info, err := w.admin(o.inst).CreateClient(ctx, req)
		if err != nil {
			return err
		}
		m.clients[o.name] = &mClient{name: o.name, id: info.ClientID, secret: info.ClientSecret, ttl: o.ttl, jwt: o.jwt}
	case opNewUser:
		pw := o.name + "-password"
		if _, err := w.admin(o.inst).CreateUser(ctx, admin.CreateUserRequest{Username: o.name, Password: pw}); err != nil {
			return err
		}
		jar, _ := cookiejar.New(nil)
		m.users[o.name] = &mUser{name: o.name, username: o.name, password: pw, jar: jar}
	case opClientCredentials:
		c := m.clients[o.client]
		if c == nil || (o.flag && c.oldSecret == "") {
			return nil
		}
		as := c
		if o.flag {
			as = &mClient{id: c.id, secret: c.oldSecret}
		}
		status, body, err := w.tokenRequest(o.inst, as, url.Values{"grant_type": {"client_credentials"}})
		if err != nil {
			return err
		}
		if c.deleted || (o.flag && !now.Before(c.oldUntil)) {
			if status != http.StatusUnauthorized {
				return failf("unexpected-answer", "a deleted client got %d %s, want 401", status, body)
			}
			return nil
		}
		if m.cutOff(c, now) {
			return expectStatus(status, body, http.StatusServiceUnavailable, "temporarily_unavailable")
		}
		if status != http.StatusOK {
			return failf("unexpected-answer", "client_credentials: %d %s", status, body)
		}
		return w.addAccess(o.inst, o.name, c, "", body["access_token"].(string), now)
	case opAuthorize:
		c, u := m.clients[o.client], m.users[o.user]
		if c == nil || u == nil || c.deleted {
			return nil
		}
		verifier := newVerifier()
		code, err := w.authorize(o.inst, u, c, verifier)
		if u.deleted {
			if !errors.Is(err, errLoginRefused) {
				return failf("unexpected-answer", "a deleted user's session authorized: %q %v", code, err)
			}
			return nil
		}
		if err != nil {
			return err
		}
		key := [2]string{o.client, o.user}
		g := m.active[key]
		if g == "" {
			g = "g" + o.name[1:]
			m.grants[g] = &mGrant{name: g, client: o.client, user: o.user}
			m.active[key] = g
		}
		m.codes[o.name] = &mCode{name: o.name, text: code, verifier: verifier, client: o.client, user: o.user, grant: g,
			exp: now.Add(time.Minute)}
	case opRedeem:
		k, by := m.codes[o.target], m.clients[o.by]
		if k == nil || by == nil {
			return nil
		}
		verifier := k.verifier
		if !o.good {
			verifier = newVerifier()
		}
		status, body, err := w.tokenRequest(o.inst, by, url.Values{"grant_type": {"authorization_code"}, "code": {k.text},
			"redirect_uri": {"http://127.0.0.1:9/cb"}, "code_verifier": {verifier}})
		if err != nil {
			return err
		}
		g := m.grants[k.grant]
		switch {
		case by.deleted:
			return expectStatus(status, body, http.StatusUnauthorized, "")
		case m.cutOff(by, now):
			// Refused before the code is even looked at: nothing changes.
			return expectStatus(status, body, http.StatusServiceUnavailable, "temporarily_unavailable")
		case g.revoked || k.purged || !now.Before(k.exp) && !k.used:
			return expectStatus(status, body, http.StatusBadRequest, "invalid_grant")
		case by.name != k.client || !o.good:
			// Presented by another client, or without the right verifier: refused, and
			// nothing changes (the code is not consumed, the grant not revoked).
			return expectStatus(status, body, http.StatusBadRequest, "invalid_grant")
		case k.used:
			// Its own client, with its verifier, again: theft (RFC 6749 §4.1.2).
			if err := expectStatus(status, body, http.StatusBadRequest, "invalid_grant"); err != nil {
				return err
			}
			m.revokeGrant(k.grant)
			return nil
		}
		if status != http.StatusOK {
			return failf("unexpected-answer", "redeeming %s: %d %v", k.name, status, body)
		}
		k.used = true
		if err := w.addAccess(o.inst, o.name, by, k.grant, body["access_token"].(string), now); err != nil {
			return err
		}
		w.addRefresh("r"+o.name[1:], by, k.grant, body)
	case opRefresh:
		rt, by := m.tokens[o.target], m.clients[o.by]
		if rt == nil || by == nil {
			return nil
		}
		status, body, err := w.tokenRequest(o.inst, by, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt.text}})
		if err != nil {
			return err
		}
		switch {
		case by.deleted:
			return expectStatus(status, body, http.StatusUnauthorized, "")
		case m.cutOff(by, now):
			return expectStatus(status, body, http.StatusServiceUnavailable, "temporarily_unavailable")
		case m.grants[rt.grant].revoked, by.name != rt.client:
			return expectStatus(status, body, http.StatusBadRequest, "invalid_grant")
		case rt.used:
			if err := expectStatus(status, body, http.StatusBadRequest, "invalid_grant"); err != nil {
				return err
			}
			m.revokeGrant(rt.grant)
			return nil
		}
		if status != http.StatusOK {
			return failf("unexpected-answer", "refreshing with %s: %d %v", rt.name, status, body)
		}
		rt.used = true
		if err := w.addAccess(o.inst, o.name, by, rt.grant, body["access_token"].(string), now); err != nil {
			return err
		}
		w.addRefresh("r"+o.name[1:], by, rt.grant, body)
	case opRevoke:
		tk, by := m.tokens[o.target], m.clients[o.by]
		if tk == nil || by == nil {
			return nil
		}
		w.touched = append(w.touched, tk.name)
		status, body, err := w.post(o.inst, "/oauth2/revoke", by, url.Values{"token": {tk.text}})
		if err != nil {
			return err
		}
		if by.deleted {
			return expectStatus(status, body, http.StatusUnauthorized, "")
		}
		if tk.refresh {
			// A refresh token is found while its grant lives (it is deleted with it).
			switch {
			case m.grants[tk.grant].revoked:
				return expectStatus(status, body, http.StatusOK, "")
			case by.name != tk.client:
				return expectStatus(status, body, http.StatusBadRequest, "unauthorized_client")
			}
			if err := expectStatus(status, body, http.StatusOK, ""); err != nil {
				return err
			}
			m.revokeGrant(tk.grant)
			return nil
		}
		if by.name != tk.client {
			if (!now.Before(tk.exp) || m.retired[tk.kid]) && status == http.StatusOK {
				return nil // long expired, perhaps signed by a key no longer kept: not a token of ours (RFC 7009 §2.2)
			}
			return expectStatus(status, body, http.StatusBadRequest, "unauthorized_client")
		}
		if err := expectStatus(status, body, http.StatusOK, ""); err != nil {
			return err
		}
		if m.live(tk, now) {
			if w.set[o.inst].cascade && tk.grant != "" {
				m.revokeGrant(tk.grant)
			} else {
				tk.revoked = true
			}
		}
	case opRevokeAll:
		req := admin.RevokeAllRequest{}
		var c *mClient
		var u *mUser
		if o.client != "" {
			if c = m.clients[o.client]; c == nil {
				return nil
			}
			req.Client = c.id
		}
		if o.user != "" {
			if u = m.users[o.user]; u == nil {
				return nil
			}
			req.User = u.username
		}
		res, err := w.admin(o.inst).RevokeAll(ctx, req)
		var ae *admin.APIError
		if (c != nil && c.deleted) || (u != nil && u.deleted) {
			if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
				return failf("unexpected-answer", "revoke-all of a deleted client or user: %v, want 404", err)
			}
			return nil
		}
		if err != nil {
			return err
		}
		for _, g := range m.grants {
			if (c == nil || g.client == c.name) && (u == nil || g.user == u.name) {
				m.revokeGrant(g.name)
			}
		}
		if c != nil && u == nil {
			// Every token of the client issued so far is revoked (covered). The answered
			// cut-off says until when the client is refused new tokens, which it must be
			// until a token's iat could be past every earlier one's.
			c.cutSeq = len(m.order)
			if res.RevokedBefore == nil || res.RevokedBefore.Before(now.Add(m.skew)) {
				return failf("unexpected-answer", "revoke-all --client %s: cut-off %v, want at least %s (now plus the skew)", c.name, res.RevokedBefore, now.Add(m.skew))
			}
			if res.RevokedBefore.After(c.cut) {
				c.cut = *res.RevokedBefore
			}
			// The next step may ask another instance for a token: let the cut-off reach it
			// first (by notification, within the propagation bound).
			for i, in := range w.insts {
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
					if cut, ok := in.state.ClientCutoff(c.id); ok && !cut.Before(c.cut) {
						break
					}
					if time.Now().After(deadline) {
						return failf("unexpected-answer", "instance %d does not know the cut-off of client %s 5 s after revoke-all", i, c.name)
					}
				}
			}
		}
	case opDeleteClient:
		c := m.clients[o.client]
		if c == nil {
			return nil
		}
		err := w.admin(o.inst).DeleteClient(ctx, c.id)
		if c.deleted {
			var ae *admin.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
				return failf("unexpected-answer", "deleting a deleted client: %v, want 404", err)
			}
			return nil
		}
		if err != nil {
			return err
		}
		c.deleted = true
		for _, g := range m.grants {
			if g.client == c.name {
				m.revokeGrant(g.name)
			}
		}
		return w.propagated(c, http.StatusUnauthorized)
	case opDeleteUser:
		u := m.users[o.user]
		if u == nil || u.deleted {
			return nil
		}
		if _, err := w.admin(o.inst).DeleteUser(ctx, u.username); err != nil {
			return err
		}
		u.deleted = true
		for _, g := range m.grants {
			if g.user == u.name {
				m.revokeGrant(g.name)
			}
		}
	case opAdvance:
		w.clock.Advance(o.d)
	case opDrift:
		if w.cfg.instances > 1 {
			w.clock.Drift(o.inst, o.d, m.skew) // only within the clock bound
		}
	case opJanitor:
		for _, in := range w.insts {
			if _, err := in.janitor.Sweep(ctx); err != nil {
				return err
			}
		}
		// Each instance's janitor deletes by its own clock: the latest decides.
		latest := w.clock.latest()
		for _, k := range m.codes {
			if k.exp.Before(latest.Add(-m.skew)) {
				k.purged = true
			}
		}
	case opRestart:
		if err := w.insts[o.inst].Close(); err != nil {
			return fmt.Errorf("closing instance %d: %w", o.inst, err)
		}
		w.insts[o.inst] = nil
		w.set[o.inst] = instSettings{ttl: o.ttl, cascade: o.flag}
		if err := w.start(o.inst); err != nil {
			return err
		}
		if o.inst == 0 {
			// The middleware's stream ended with the instance; rather than wait out its
			// reconnection back-off (package resource tests that), subscribe afresh: a new
			// subscriber reads every record in force from the start.
			return w.subscribe()
		}
	case opRotateKeys:
		if _, err := w.admin(o.inst).RotateKeys(ctx, admin.RotateKeysRequest{Now: o.flag}); err != nil {
			return err
		}
		if o.flag {
			m.rotatedNow = w.clock.Now()
		}
		return w.keysPropagated()
	case opRetireKey:
		// The key is chosen now by its use, state and algorithm ("active sig": the key that
		// signs access tokens; "active sig RS256": the RS256 key that signs).
		keys, err := w.admin(o.inst).ListKeys(ctx)
		if err != nil {
			return err
		}
		state, use, _ := strings.Cut(o.target, " ")
		use, alg, _ := strings.Cut(use, " ")
		if alg == "" && use == "sig" {
			alg = token.AlgES256
		}
		var k *admin.KeyInfo
		for i := range keys {
			if keys[i].State == state && keys[i].Use == use && (alg == "" || keys[i].Alg == alg) {
				k = &keys[i]
				break
			}
		}
		if k == nil {
			return nil
		}
		_, err = w.admin(o.inst).RetireKey(ctx, k.KID)
		var ae *admin.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusConflict && state == "active" {
			return nil // the key in use, with no newer one to take over: refused, nothing changes
		}
		if err != nil {
			return err
		}
		m.retired[k.KID] = true
		if k.Alg == token.AlgRS256 {
			w.stats.rs256Retired++
		}
		return w.keysPropagated()
	case opUpdateClient:
		c := m.clients[o.client]
		if c == nil {
			return nil
		}
		secs := int64(o.ttl / time.Second)
		_, err := w.admin(o.inst).UpdateClient(ctx, c.id, admin.UpdateClientRequest{TokenTTL: &secs})
		if c.deleted {
			var ae *admin.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
				return failf("unexpected-answer", "updating a deleted client: %v, want 404", err)
			}
			return nil
		}
		if err != nil {
			return err
		}
		c.prevTTL, c.ttl = c.ttl, o.ttl
	case opRotateSecret:
		c := m.clients[o.client]
		if c == nil {
			return nil
		}
		info, err := w.admin(o.inst).RotateSecret(ctx, c.id, admin.RotateSecretRequest{Overlap: &[]admin.Duration{admin.Duration(o.d)}[0]})
		if c.deleted {
			var ae *admin.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
				return failf("unexpected-answer", "rotating a deleted client's secret: %v, want 404", err)
			}
			return nil
		}
		if err != nil {
			return err
		}
		c.oldSecret, c.oldUntil, c.secret = c.secret, now.Add(o.d), info.ClientSecret
		if o.d == 0 {
			c.oldUntil = time.Time{} // dropped at once, whatever another instance's clock says
		}
		// Every instance must know the new secret before the next step uses it.
		return w.propagated(c, http.StatusOK)
	}
	return nil
}

// propagated waits until every instance answers c's authentication with status (the store tells
// the other instances of a client's change at commit; introspection changes nothing), within the
// propagation bound.
func (w *world) propagated(c *mClient, status int) error {
	for i := range w.insts {
		for deadline := time.Now().Add(5 * time.Second); ; {
			got, _, err := w.post(i, "/oauth2/introspect", c, url.Values{"token": {"x"}})
			if err != nil {
				return err
			}
			if got == status {
				break
			}
			if time.Now().After(deadline) {
				return failf("unexpected-answer", "instance %d answers client %s with %d, not %d, 5 s after its change", i, c.name, got, status)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// keysPropagated waits until every instance publishes the same signing keys (the store tells the
// others of a rotation or retirement at commit), within the propagation bound, so that the
// resource middleware, which fetches the JWKS of instance 0, never depends on a race with it.
func (w *world) keysPropagated() error {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var first string
		same := true
		for i := range w.insts {
			res, err := w.hc.Get(w.base(i) + "/.well-known/jwks.json")
			if err != nil {
				return err
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				return err
			}
			var set struct {
				Keys []struct {
					Kid string `json:"kid"`
				} `json:"keys"`
			}
			json.Unmarshal(b, &set)
			var kids []string
			for _, k := range set.Keys {
				kids = append(kids, k.Kid)
			}
			sort.Strings(kids)
			if i == 0 {
				first = strings.Join(kids, " ")
			} else if strings.Join(kids, " ") != first {
				same = false
			}
		}
		if same {
			return nil
		}
		if time.Now().After(deadline) {
			return failf("unexpected-answer", "the instances publish different signing keys 5 s after a key change")
		}
	}
}

func expectStatus(status int, body map[string]any, want int, code string) error {
	if status != want || (code != "" && body["error"] != code) {
		return failf("unexpected-answer", "got %d %v, want %d %s", status, body, want, code)
	}
	return nil
}

func newVerifier() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// addAccess records an access token just issued by instance i to client c at now, reading
// what the server will read from it (jti, grant, iat, exp, status list entry).
func (w *world) addAccess(i int, name string, c *mClient, grant, text string, now time.Time) error {
	t := &mToken{name: name, text: text, client: c.name, grant: grant, jwt: c.jwt, idx: -1, deadSince: -1}
	if c.jwt {
		parts := strings.Split(text, ".")
		if len(parts) != 3 {
			return failf("unexpected-answer", "client %s got a non-JWT access token", c.name)
		}
		b, err := base64.RawURLEncoding.DecodeString(parts[1])
		var cl token.AccessClaims
		if err != nil || json.Unmarshal(b, &cl) != nil || cl.Status == nil {
			return failf("unexpected-answer", "undecodable JWT access token")
		}
		var hdr struct {
			Kid string `json:"kid"`
		}
		if h, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(h, &hdr) != nil {
			return failf("unexpected-answer", "undecodable JWT header")
		}
		t.jti, t.gid, t.clientID, t.kid = cl.ID, cl.GrantID, cl.ClientID, hdr.Kid
		if len(w.m.order)%2 == 0 {
			// Every other JWT also signed RS256, so that RS256 keys live through every
			// operation (rotation, retirement, restarts, other instances) like the others.
			if t.rsText, err = w.insts[i].keys.SignWith(context.Background(), token.AlgRS256, cl, token.TypeAccessToken); err != nil {
				return fmt.Errorf("signing RS256: %w", err)
			}
			if jws, err := token.ParseJWS(t.rsText); err != nil || jws.Alg != token.AlgRS256 {
				return failf("unexpected-answer", "SignWith(RS256) signed no RS256 token: %v", err)
			}
			if t.rsKid, err = token.JWTKeyID(t.rsText); err != nil {
				return err
			}
			if len(w.m.rsKids) == 0 {
				// The first RS256 key signs at once, like a key rotated in with --now.
				w.m.rotatedNow = w.clock.Now()
			}
			w.m.rsKids[t.rsKid] = true
			w.stats.rs256++
		}
		t.iat, t.exp = time.Unix(cl.IssuedAt, 0), time.Unix(cl.Expiry, 0)
		t.list, t.idx = strings.TrimPrefix(cl.Status.StatusList.URI, w.insts[i].Issuer+"/oauth2/statuslists/"), cl.Status.StatusList.Idx
	} else {
		cl, err := w.insts[i].keyring.Open(text)
		if err != nil {
			return failf("unexpected-answer", "the issuing instance cannot open its own token: %v", err)
		}
		t.jti, t.gid, t.clientID, t.iat, t.exp = cl.JTI(), cl.GrantID, cl.ClientID, cl.IssuedAt, cl.Expiry
		kid, _ := token.KeyID(text)
		t.kid = hex.EncodeToString(kid[:])
	}
	// The token carries what the model says: its client, its grant, the ttl in force.
	ttl := c.ttl
	if ttl == 0 {
		ttl = w.set[i].ttl
	}
	want := now.Add(ttl).Truncate(time.Second)
	if w.cfg.instances > 1 && !t.exp.Equal(want) && c.prevTTL != c.ttl {
		// This instance may not have learnt of the last update yet.
		prev := c.prevTTL
		if prev == 0 {
			prev = w.set[i].ttl
		}
		want = now.Add(prev).Truncate(time.Second)
	}
	if !t.exp.Equal(want) || t.clientID != c.id {
		return failf("unexpected-answer", "token %s: exp %s client %s, want exp %s (ttl %s) client %s", name, t.exp, t.clientID, want, ttl, c.id)
	}
	if grant != "" {
		g := w.m.grants[grant]
		if g.realID == "" {
			g.realID = t.gid
		}
		if t.gid != g.realID {
			return failf("unexpected-answer", "token %s is of grant %s, the model says %s (%s)", name, t.gid, grant, g.realID)
		}
	}
	t.seq = len(w.m.order)
	w.m.tokens[name] = t
	w.m.order = append(w.m.order, name)
	w.touched = append(w.touched, name)
	w.stats.access++
	if t.jwt {
		w.stats.jwt++
	}
	return nil
}

func (w *world) addRefresh(name string, c *mClient, grant string, body map[string]any) {
	text, _ := body["refresh_token"].(string)
	if text == "" {
		return
	}
	w.stats.refresh++
	w.m.tokens[name] = &mToken{name: name, text: text, refresh: true, client: c.name, grant: grant, idx: -1, deadSince: -1, seq: len(w.m.order)}
	w.m.order = append(w.m.order, name)
	w.touched = append(w.touched, name)
}

// HTTP.

func (w *world) post(i int, path string, c *mClient, form url.Values) (int, map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, w.base(i)+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	res, err := w.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	body := map[string]any{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			return 0, nil, fmt.Errorf("%s answered %d %q", path, res.StatusCode, b)
		}
	}
	return res.StatusCode, body, nil
}

func (w *world) tokenRequest(i int, c *mClient, form url.Values) (int, map[string]any, error) {
	return w.post(i, "/oauth2/token", c, form)
}

// authorize runs the authorization request as a browser would (login, consent) and returns the
// code.
func (w *world) authorize(i int, u *mUser, c *mClient, verifier string) (string, error) {
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {"http://127.0.0.1:9/cb"}, "scope": {"read"},
		"state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	hc := &http.Client{Jar: u.jar, Transport: w.hc.Transport, CheckRedirect: w.hc.CheckRedirect}
	do := func(method, u string, form url.Values) (*http.Response, string, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			return nil, "", err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := hc.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, string(b), err
	}
	base := w.base(i)
	res, page, err := do("GET", base+"/oauth2/authorize?"+q.Encode(), nil)
	for hop := 0; err == nil && hop < 8; hop++ {
		switch loc := res.Header.Get("Location"); {
		case res.StatusCode == http.StatusSeeOther && strings.HasPrefix(loc, "/"):
			res, page, err = do("GET", base+loc, nil)
		case res.StatusCode == http.StatusSeeOther:
			u, perr := url.Parse(loc)
			if perr != nil || u.Query().Get("code") == "" {
				return "", failf("unexpected-answer", "authorization redirected to %s", loc)
			}
			return u.Query().Get("code"), nil
		case strings.Contains(page, `action="/login"`):
			f := formOf(page)
			f.Set("username", u.username)
			f.Set("password", u.password)
			if res, page, err = do("POST", base+"/login", f); err == nil && res.StatusCode != http.StatusSeeOther {
				return "", errLoginRefused
			}
		case strings.Contains(page, `name="decision"`):
			f := formOf(page)
			f.Set("decision", "allow")
			res, page, err = do("POST", base+"/oauth2/authorize", f)
		default:
			return "", failf("unexpected-answer", "authorization: page %d: %.300s", res.StatusCode, page)
		}
	}
	if err != nil {
		return "", err
	}
	return "", failf("unexpected-answer", "authorization: too many hops")
}

var errLoginRefused = errors.New("login refused")

// introspect asks instance i about text, as the token's own client when it exists, else as the
// witness.
func (w *world) introspect(i int, t *mToken) (bool, error) {
	as := w.m.clients[t.client]
	if as.deleted {
		as = &mClient{id: w.witness.ClientID, secret: w.witness.ClientSecret}
	}
	status, body, err := w.post(i, "/oauth2/introspect", as, url.Values{"token": {t.text}})
	if err != nil {
		return false, err
	}
	if status != http.StatusOK {
		return false, failf("unexpected-answer", "introspection: %d %v", status, body)
	}
	active, _ := body["active"].(bool)
	if active && !t.refresh {
		if exp, _ := body["exp"].(float64); int64(exp) != t.exp.Unix() {
			return true, failf("unexpected-answer", "introspection of %s says exp %v, the token says %d", t.name, body["exp"], t.exp.Unix())
		}
	}
	return active, nil
}

// check compares every instance with the model. Cheap checks (the in-memory revocation state,
// the status list bits) cover every token the model tracks; introspection covers the tokens
// this step touched and a random one, or every one when full is set; every few steps the status
// lists are read as published (fetched and decoded). After every step the resource middleware
// with push (a long-lived subscriber, its clock the earliest) checks every tracked JWT,
// client-wide cut-offs included.
func (w *world) check(full bool) error {
	m := w.m
	earliest, latest := w.clock.Bounds()
	var tracked []*mToken
	for _, n := range m.order {
		t := m.tokens[n]
		live := m.live(t, earliest) // live on some instance: the earliest clock is the last to see it expire
		if !live && t.deadSince < 0 && (t.refresh || !earliest.Before(t.exp.Add(m.skew))) {
			t.deadSince = w.step // it can never be active again
		}
		if t.deadSince >= 0 && w.step-t.deadSince > 5 {
			continue
		}
		tracked = append(tracked, t)
	}
	w.stats.checks++
	w.stats.maxTracked = max(w.stats.maxTracked, len(tracked))
	w.stats.revoked = 0
	for _, t := range tracked {
		if !t.refresh && m.covered(t) {
			w.stats.revoked++
		}
	}
	sample := map[string]bool{}
	for _, n := range w.touched {
		sample[n] = true
	}
	if len(tracked) > 0 {
		sample[tracked[w.rng.IntN(len(tracked))].name] = true
	}
	published := full || w.step%5 == 4
	for i := range w.insts {
		now := w.clock.At(i)
		err := w.checkInstance(i, tracked, sample, full, published, now, latest)
		// Another instance learns of a change by notification or poll: allow it the bound.
		for deadline := time.Now().Add(5 * time.Second); err != nil && w.cfg.instances > 1 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			err = w.checkInstance(i, tracked, sample, full, published, now, latest)
		}
		if err != nil {
			return fmt.Errorf("instance %d: %w", i, err)
		}
	}
	// Push arrives shortly after the commit (and after a restart of instance 0, the stream
	// reconnects): allow it the same bound.
	err := w.checkMiddleware(tracked, earliest)
	for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
		w.stats.pushWaits++
		if os.Getenv("MODEL_DEBUG") != "" {
			w.t.Logf("step %d: %v", w.step, err)
		}
		time.Sleep(2 * time.Millisecond)
		err = w.checkMiddleware(tracked, earliest)
	}
	return err
}

// checkMiddleware checks the JWTs tracked with the resource middleware with push, whose clock
// reads now.
func (w *world) checkMiddleware(tracked []*mToken, now time.Time) error {
	if w.mw.StalenessBound() != 0 {
		return failf("unexpected-answer", "the resource middleware's event stream is not live")
	}
	for _, t := range tracked {
		if !t.jwt || t.refresh {
			continue
		}
		_, err := w.mw.Verify(context.Background(), t.text)
		if err != nil && strings.Contains(err.Error(), "unknown key") && w.clock.Now().Sub(w.m.rotatedNow) < time.Second {
			continue // a key rotated in with --now within the second (see refModel.rotatedNow)
		}
		if want := w.m.mwRefuses(t, now); (err != nil) != want {
			return failf(kindOf(want), "resource middleware with push on %s: %v, the model says refused=%t (exp %s, iat %s, now %s)",
				t.name, err, want, t.exp.Format(time.DateTime), t.iat.Format(time.DateTime), now.Format(time.DateTime))
		}
		if t.rsText != "" {
			rs := rsTwin(t)
			_, err := w.mw.Verify(context.Background(), rs.text)
			if err != nil && strings.Contains(err.Error(), "unknown key") && w.clock.Now().Sub(w.m.rotatedNow) < time.Second {
				continue
			}
			if want := w.m.mwRefuses(rs, now); (err != nil) != want {
				return failf(kindOf(want), "resource middleware with push on %s: %v, the model says refused=%t (RS256 key %s retired: %t)",
					rs.name, err, want, rs.kid, w.m.retired[rs.kid])
			}
		}
	}
	return nil
}

// checkInstance checks instance i, whose clock reads now; latest is the latest instance clock.
func (w *world) checkInstance(i int, tracked []*mToken, sample map[string]bool, full, published bool, now, latest time.Time) error {
	m, in := w.m, w.insts[i]
	lists := map[string][]byte{}
	var pub map[string][]byte
	if published {
		pub = map[string][]byte{}
	}
	for _, t := range tracked {
		live := m.live(t, now)
		if !t.refresh && latest.Before(t.exp.Add(m.skew)) {
			// Until exp plus the skew on every instance's clock (no janitor can have deleted
			// the record yet), the state and the status list must hold the revocation: another
			// instance or a resource server whose clock is behind still accepts the token by
			// its exp.
			revoked := in.state.IsRevoked(t.jti, t.gid, t.clientID, t.iat)
			if want := m.covered(t); revoked != want {
				active, err := w.introspect(i, t)
				return failf(kindOf(want), "State.IsRevoked(%s) = %t, the model says %t (iat %s, exp %s, now %s; introspection: active=%t %v)",
					t.name, revoked, want, t.iat.Format(time.DateTime), t.exp.Format(time.DateTime), now.Format(time.DateTime), active, err)
			}
			if t.jwt {
				raw, ok := lists[t.list]
				if !ok {
					// The rendering is kept while the list's version stands (entries only
					// expire out of it after the window checked here).
					key := fmt.Sprint(i, t.list)
					c, ok := w.lists[key]
					if v := in.state.StatusVersion(t.list); !ok || c.version != v {
						c.raw, c.version = in.state.StatusList(t.list, statuslist.Size)
						w.lists[key] = c
					}
					raw, lists[t.list] = c.raw, c.raw
				}
				st, _ := token.StatusAt(raw, 1, t.idx)
				if want := m.inStatusList(t); (st != token.StatusValid) != want {
					return failf(kindOf(want), "the status list entry of %s is %d, the model says revoked=%t", t.name, st, want)
				}
				if pub != nil {
					raw, ok := pub[t.list]
					if !ok {
						var err error
						if raw, err = w.publishedList(i, t.list); err != nil {
							return err
						}
						pub[t.list] = raw
					}
					st, _ := token.StatusAt(raw, 1, t.idx)
					if want := m.inStatusList(t); (st != token.StatusValid) != want {
						return failf(kindOf(want), "instance %d publishes the status list entry of %s as %d, the model says revoked=%t", i, t.name, st, want)
					}
				}
			}
		}
		if full || w.replay || sample[t.name] {
			w.stats.introspections++
			active, err := w.introspect(i, t)
			if err != nil {
				return err
			}
			if active != live {
				return failf(kindOf(!live), "introspection of %s: active=%t, the model says %t (iat %s, exp %s, now %s)", t.name, active, live,
					t.iat.Format(time.DateTime), t.exp.Format(time.DateTime), now.Format(time.DateTime))
			}
			if t.rsText != "" {
				rs := rsTwin(t)
				active, err := w.introspect(i, rs)
				if err != nil {
					return err
				}
				if want := m.live(rs, now); active != want {
					return failf(kindOf(!want), "introspection of %s: active=%t, the model says %t (RS256 key %s retired: %t)", rs.name, active, want, rs.kid, m.retired[rs.kid])
				}
			}
		}
	}
	return nil
}

// publishedList fetches status list id from instance i as a resource server would, and returns
// its bits.
func (w *world) publishedList(i int, id string) ([]byte, error) {
	res, err := w.hc.Get(w.base(i) + "/oauth2/statuslists/" + id)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(string(b), ".")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/statuslist+jwt" || len(parts) != 3 {
		return nil, failf("unexpected-answer", "status list %s: %d %.200s", id, res.StatusCode, b)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var cl token.StatusListClaims
	if err != nil || json.Unmarshal(payload, &cl) != nil {
		return nil, failf("unexpected-answer", "status list %s: an undecodable token", id)
	}
	raw, err := token.DecodeStatusList(cl.StatusList.Lst)
	if err != nil {
		return nil, failf("unexpected-answer", "status list %s: %v", id, err)
	}
	w.stats.published++
	return raw, nil
}

// rsTwin returns t's RS256 copy as a token of its own: the same claims, another text and key.
func rsTwin(t *mToken) *mToken {
	rs := *t
	rs.name, rs.text, rs.kid = t.name+"/RS256", t.rsText, t.rsKid
	return &rs
}

func kindOf(wantRevoked bool) string {
	if wantRevoked {
		return "revoked-but-active"
	}
	return "live-but-inactive"
}
