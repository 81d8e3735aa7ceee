package oauth_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/metrics"
	"github.com/rescind/rescind/internal/pgtest"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/store/postgres"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// backends opens a fresh store of each kind for t.
var backends = []struct {
	name string
	open func(t *testing.T) rescind.Store
}{
	{"sqlite", func(t *testing.T) rescind.Store {
		st, err := sqlite.Open(context.Background(), t.TempDir()+"/db")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
	{"postgres", func(t *testing.T) rescind.Store {
		st, err := postgres.Open(context.Background(), pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

// Audience columns of the table, and for each the resource server registered for it and one
// registered for something else.
var (
	audiences = map[string][]string{"issuer": {issuer}, "resource": {resA}, "several": {resB, resD}}
	rsFor     = map[string]string{"issuer": "rs-issuer", "resource": "rs-a", "several": "rs-b"}
	rsNotFor  = map[string]string{"issuer": "rs-a", "resource": "rs-b", "several": "rs-a"}
)

// Caller kinds, for a token of owner in audience column col: the client each kind is.
var callerKinds = []struct {
	kind string
	who  func(owner, col string) string
}{
	{"own client", func(owner, _ string) string { return owner }},
	{"resource server for the audience", func(_, col string) string { return rsFor[col] }},
	{"resource server for another resource", func(_, col string) string { return rsNotFor[col] }},
	{"resource server without resources", func(string, string) string { return "rs" }},
	{"unrelated confidential client", func(string, string) string { return "plainok" }},
	{"client-credentials-only client", func(string, string) string { return "other" }},
}

// mayIntrospectAccess is the rule for access tokens, as a table: which caller kinds learn.
var mayIntrospectAccess = map[string]bool{
	"own client": true, "resource server for the audience": true, "resource server without resources": true,
}

// tableToken is one token of the table.
type tableToken struct {
	name, kind, col, owner, text string
	grantID                      string
}

// issueTableTokens issues a token of every kind for every audience column: through the
// endpoints where the server issues that combination today (client credentials with and without
// resource, code flow), minted with the server's own keys where it cannot yet (several
// audiences, grant tokens with a resource: RFC 8707 on every grant is issue 16).
func issueTableTokens(t *testing.T, e *env) []tableToken {
	ctx := context.Background()
	var out []tableToken
	cc := func(client, resource string) string {
		body := url.Values{"grant_type": {"client_credentials"}}
		if resource != "" {
			body.Set("resource", resource)
		}
		r := e.do(req{path: "/oauth2/token", body: body.Encode(), user: client, pass: secrets[client]})
		if r.status != 200 {
			t.Fatalf("token for %s: %d %s", client, r.status, r.body)
		}
		return r.json(t)["access_token"].(string)
	}
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("t")
	codeFlow := func(client, redirect string) (tokens, string) {
		code := b.approve(authorizeQuery(client, redirect, "read", challenge)).Get("code")
		r, tk := e.exchange(client, secrets[client], codeForm(code, redirect, verifier))
		if r.status != 200 {
			t.Fatalf("code exchange for %s: %d %s", client, r.status, r.body)
		}
		gs, _ := e.store.ListGrants(ctx, rescind.GrantFilter{ClientID: client})
		return tk, gs[0].ID
	}
	web, webGrant := codeFlow("webapp", "https://app.example/cb")
	jweb, jwebGrant := codeFlow("jwtweb", "https://jwt.example/cb")

	out = append(out,
		tableToken{name: "opaque access", kind: "access", col: "issuer", owner: "app", text: cc("app", "")},
		tableToken{name: "opaque access", kind: "access", col: "resource", owner: "app", text: cc("app", resA)},
		tableToken{name: "opaque access", kind: "access", col: "several", owner: "app", text: e.mintOpaque(t, "app", "", audiences["several"])},
		tableToken{name: "JWT access", kind: "access", col: "issuer", owner: "jwtapp", text: cc("jwtapp", "")},
		tableToken{name: "JWT access", kind: "access", col: "resource", owner: "jwtapp", text: cc("jwtapp", resA)},
		tableToken{name: "JWT access", kind: "access", col: "several", owner: "jwtapp", text: e.mintJWT(t, "jwtapp", "", audiences["several"])},
		tableToken{name: "grant access (opaque)", kind: "access", col: "issuer", owner: "webapp", text: web.access, grantID: webGrant},
		tableToken{name: "grant access (opaque)", kind: "access", col: "resource", owner: "webapp", text: e.mintOpaque(t, "webapp", webGrant, audiences["resource"]), grantID: webGrant},
		tableToken{name: "grant access (opaque)", kind: "access", col: "several", owner: "webapp", text: e.mintOpaque(t, "webapp", webGrant, audiences["several"]), grantID: webGrant},
		tableToken{name: "grant access (JWT)", kind: "access", col: "issuer", owner: "jwtweb", text: jweb.access, grantID: jwebGrant},
		tableToken{name: "grant access (JWT)", kind: "access", col: "resource", owner: "jwtweb", text: e.mintJWT(t, "jwtweb", jwebGrant, audiences["resource"]), grantID: jwebGrant},
		tableToken{name: "grant access (JWT)", kind: "access", col: "several", owner: "jwtweb", text: e.mintJWT(t, "jwtweb", jwebGrant, audiences["several"]), grantID: jwebGrant},
		// A refresh token has no audience of its own: it is for the authorization server.
		tableToken{name: "refresh", kind: "refresh", col: "issuer", owner: "webapp", text: web.refresh, grantID: webGrant},
		tableToken{name: "refresh (JWT client)", kind: "refresh", col: "issuer", owner: "jwtweb", text: jweb.refresh, grantID: jwebGrant},
	)
	return out
}

// mintOpaque seals an access token as the server would, with audience aud.
func (e *env) mintOpaque(t *testing.T, client, grantID string, aud []string) string {
	id, _ := token.NewID()
	now := e.clock()
	text, err := e.keys.Seal(&token.Claims{ID: id, ClientID: client, GrantID: grantID, Subject: client, Scope: "read",
		IssuedAt: now, Expiry: now.Add(time.Hour).Truncate(time.Second), Audience: aud})
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// mintJWT signs a JWT access token as the server would, with audience aud and a status entry.
func (e *env) mintJWT(t *testing.T, client, grantID string, aud []string) string {
	id, _ := token.NewID()
	now := e.clock()
	list, idx, err := e.statuses.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	text, err := e.signer.Sign(token.AccessClaims{Issuer: issuer, Subject: client, Audience: aud, Expiry: now.Add(time.Hour).Unix(),
		IssuedAt: now.Unix(), ID: base64.RawURLEncoding.EncodeToString(id[:]), ClientID: client, Scope: "read", GrantID: grantID,
		Status: &token.Status{StatusList: token.StatusListRef{Idx: idx, URI: issuer + "/oauth2/statuslists/" + list}}}, token.TypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestIntrospectionPermissions is the table of RFC 7662 §4 permissions: (caller kind × token
// kind × audience), on SQLite and PostgreSQL. An access token is visible to its own client and
// to resource servers for its audience (or for every audience); a refresh token to its own
// client alone; every other caller gets exactly the bytes an unknown token gets.
func TestIntrospectionPermissions(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newEnvStore(t, be.open(t))
			toks := issueTableTokens(t, e)
			unknown := e.do(req{path: "/oauth2/introspect", body: "token=rsc_at_unknown", user: "rs", pass: rsSecret})
			if string(unknown.body) != `{"active":false}` {
				t.Fatalf("unknown token: %q", unknown.body)
			}
			for _, tk := range toks {
				for _, ck := range callerKinds {
					caller := ck.who(tk.owner, tk.col)
					want := mayIntrospectAccess[ck.kind]
					if tk.kind == "refresh" {
						want = ck.kind == "own client"
					}
					t.Run(fmt.Sprintf("%s/%s/%s", tk.name, tk.col, ck.kind), func(t *testing.T) {
						r := e.do(req{path: "/oauth2/introspect", body: "token=" + url.QueryEscape(tk.text), user: caller, pass: secrets[caller]})
						if r.status != 200 {
							t.Fatalf("%s: %d %s", caller, r.status, r.body)
						}
						if !want {
							if string(r.body) != string(unknown.body) || r.header.Get("Content-Type") != unknown.header.Get("Content-Type") ||
								r.header.Get("Cache-Control") != unknown.header.Get("Cache-Control") {
								t.Fatalf("%s learnt something: %d %q %v; want exactly the unknown token's answer %q", caller, r.status, r.body, r.header, unknown.body)
							}
							return
						}
						m := r.json(t)
						if m["active"] != true || m["client_id"] != tk.owner {
							t.Fatalf("%s: %s; want active, client_id %s", caller, r.body, tk.owner)
						}
						if tk.kind == "access" {
							var aud token.Audience
							b, _ := json.Marshal(m["aud"])
							if json.Unmarshal(b, &aud) != nil || !slices.Equal(aud, audiences[tk.col]) {
								t.Fatalf("aud = %v; want %v", m["aud"], audiences[tk.col])
							}
						}
					})
				}
			}
			// Whoever may not see a token cannot tell a revoked one from a live one either.
			r := e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(toks[0].text), user: toks[0].owner, pass: secrets[toks[0].owner]})
			if r.status != 200 {
				t.Fatal(r.status)
			}
			for _, caller := range []string{"plainok", "other", "rs-a", "rs", "app"} {
				if r := e.do(req{path: "/oauth2/introspect", body: "token=" + url.QueryEscape(toks[0].text), user: caller, pass: secrets[caller]}); string(r.body) != string(unknown.body) {
					t.Fatalf("%s: revoked token: %q", caller, r.body)
				}
			}
		})
	}
}

// TestEventPermissions is the same table for the revocation event stream, on SQLite and
// PostgreSQL: each subscriber receives exactly the records of the tokens it may introspect,
// grant and status records as the grant's tokens (audience: the issuer), and client-wide
// cut-offs if it is a resource server or the client itself.
func TestEventPermissions(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newEnvStore(t, be.open(t))
			ctx := context.Background()
			toks := issueTableTokens(t, e)
			want := map[string]map[string]bool{} // subscriber -> event key -> expected
			expect := func(key string, subs ...string) {
				for _, s := range subs {
					if want[s] == nil {
						want[s] = map[string]bool{}
					}
					want[s][key] = true
				}
			}
			revoke := func(owner, text string) {
				t.Helper()
				if r := e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(text), user: owner, pass: secrets[owner]}); r.status != 200 {
					t.Fatalf("revoke: %d %s", r.status, r.body)
				}
			}
			// Token records: one per access token, to its client and the resource servers for
			// its audience.
			for _, tk := range toks {
				if tk.kind != "access" {
					continue
				}
				revoke(tk.owner, tk.text)
				expect("token:"+jtiOf(t, e, tk.text), tk.owner, "rs", rsFor[tk.col])
			}
			// Grant records (revoking a refresh token), and the status records of the grant's
			// JWT access tokens: the grant's audience, the issuer.
			for _, tk := range toks {
				if tk.kind != "refresh" {
					continue
				}
				revoke(tk.owner, tk.text)
				expect("grant:"+tk.grantID, tk.owner, "rs", "rs-issuer")
			}
			codeJWT := toks[9] // the code flow's JWT: the only grant token whose status entry is recorded
			if codeJWT.owner != "jwtweb" || codeJWT.col != "issuer" {
				t.Fatal("table order changed")
			}
			expect("status:"+statusOf(t, e, codeJWT.text), "jwtweb", "rs", "rs-issuer")
			// A client-wide cut-off: to the client and every resource server.
			now := e.clock()
			if err := e.committer.Revoke(ctx, rescind.Revocation{Kind: rescind.RevokeClient, Key: "app", ClientID: "app",
				RevokedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			expect("client:app", "app", "rs", "rs-issuer", "rs-a", "rs-b")
			// Last, each subscriber revokes a token of its own: reading its stream up to that
			// record, it has received everything it ever will of the above.
			e.advance(time.Millisecond) // past the cut-off, so app's last token is alive to be revoked
			subscribers := []string{"app", "jwtapp", "webapp", "jwtweb", "rs", "rs-issuer", "rs-a", "rs-b", "plainok", "other"}
			sentinels := map[string]string{}
			for _, s := range subscribers {
				tok := e.mintOpaque(t, s, "", nil)
				revoke(s, tok)
				sentinels[s] = "token:" + jtiOf(t, e, tok)
			}
			for _, s := range subscribers {
				t.Run(s, func(t *testing.T) {
					got := e.readEvents(t, s, sentinels[s])
					for k := range got {
						if slices.Contains(mapValues(sentinels), k) {
							delete(got, k) // other subscribers' last records: not part of the table
						}
					}
					if fmt.Sprint(sortedKeys(got)) != fmt.Sprint(sortedKeys(want[s])) {
						t.Fatalf("%s received\n  %v\nwant\n  %v", s, sortedKeys(got), sortedKeys(want[s]))
					}
				})
			}
		})
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// jtiOf returns the jti of an access token, read as the server reads it.
func jtiOf(t *testing.T, e *env, text string) string {
	if token.LooksLikeJWT(text) {
		payload, err := e.signer.Verify(text, token.TypeAccessToken, e.clock())
		if err != nil {
			t.Fatal(err)
		}
		var c token.AccessClaims
		json.Unmarshal(payload, &c)
		return c.ID
	}
	c, err := e.keys.Open(text)
	if err != nil {
		t.Fatal(err)
	}
	return c.JTI()
}

// statusOf returns "uri#idx" of a JWT's status list entry.
func statusOf(t *testing.T, e *env, text string) string {
	payload, err := e.signer.Verify(text, token.TypeAccessToken, e.clock())
	if err != nil {
		t.Fatal(err)
	}
	var c token.AccessClaims
	json.Unmarshal(payload, &c)
	return fmt.Sprintf("%s#%d", c.Status.StatusList.URI, c.Status.StatusList.Idx)
}

// readEvents reads subscriber's event stream from the start until the record with key last,
// and returns the keys of the records received (token:JTI, grant:ID, status:URI#IDX, client:ID).
func (e *env) readEvents(t *testing.T, subscriber, last string) map[string]bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/oauth2/revocations/events?from=start", nil)
	hr.Header.Set("Authorization", basic(subscriber, secrets[subscriber]))
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("%s: events: %d", subscriber, res.StatusCode)
	}
	wantScope := "own-tokens"
	if strings.HasPrefix(subscriber, "rs") {
		wantScope = "resource-server"
	}
	if got := res.Header.Get("Rescind-Events-Scope"); got != wantScope {
		t.Fatalf("Rescind-Events-Scope = %q, want %q", got, wantScope)
	}
	got := map[string]bool{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev oauth.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		var key string
		switch ev.Type {
		case "token":
			key = "token:" + ev.JTI
		case "grant":
			key = "grant:" + ev.GrantID
		case "status":
			key = fmt.Sprintf("status:%s#%d", ev.StatusList.URI, ev.StatusList.Idx)
		case "client":
			key = "client:" + ev.ClientID
		}
		got[key] = true
		if key == last {
			return got
		}
	}
	t.Fatalf("%s: the stream ended (%v) before its own last record; received %v", subscriber, sc.Err(), sortedKeys(got))
	return nil
}

// instance starts another server on e's store, as another instance would run, with signer.
func (e *env) instance(t *testing.T, signer *token.Signer, limiter *ratelimit.Limiter) *httptest.Server {
	clients, _ := clientreg.New(clientreg.Config{Store: e.store})
	state := revocation.NewState()
	if _, err := state.Load(context.Background(), e.store, e.clock(), nil); err != nil {
		t.Fatal(err)
	}
	met := metrics.New(prometheus.NewRegistry(), func() float64 { return 0 })
	com := revocation.NewCommitter(e.store, state, nil)
	t.Cleanup(com.Close)
	s, err := oauth.New(oauth.Config{Issuer: issuer, Clients: clients, Keys: e.keys, Revoked: state, Committer: com, Metrics: met,
		Store: e.store, Now: e.clock, Signer: signer, Statuses: &statuslist.Allocator{Recorder: e.store}, Limiter: limiter})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// TestStatusListsOnlyExisting: a status list is published only if some instance allocated it:
// an unknown id is 404 and nothing is signed for it (an instance without a signing key, which
// fails any signature, still answers 404); another instance publishes a list this one
// allocated; a published list is signed once and served as is until it changes.
func TestStatusListsOnlyExisting(t *testing.T) {
	e := newEnv(t)
	get := func(base, path string) (int, string, []byte) {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), b
	}
	jwt := e.mintJWT(t, "jwtapp", "", nil)
	st := statusOf(t, e, jwt)
	path := strings.TrimPrefix(st[:strings.Index(st, "#")], issuer)
	unknown := "/oauth2/statuslists/" + strings.Repeat("a", 26)

	code, ct, first := get(e.srv.URL, path)
	if code != 200 || ct != "application/statuslist+jwt" {
		t.Fatalf("allocated list: %d %s %s", code, ct, first)
	}
	if code, _, body := get(e.srv.URL, unknown); code != 404 || !strings.Contains(string(body), `"not_found"`) {
		t.Fatalf("unknown list: %d %s", code, body)
	}
	// ES256 signatures are randomized: the same bytes again means the list was not re-signed.
	if _, _, again := get(e.srv.URL, path); string(again) != string(first) {
		t.Fatal("an unchanged list was signed again")
	}
	if r := e.do(req{path: "/oauth2/revoke", body: "token=" + jwt, user: "jwtapp", pass: appSecret}); r.status != 200 {
		t.Fatal(r.status)
	}
	if _, _, changed := get(e.srv.URL, path); string(changed) == string(first) {
		t.Fatal("a list that changed is served as before")
	}

	// Another instance, sharing the store, publishes the list this one allocated.
	b := e.instance(t, e.signer, nil)
	if code, _, _ := get(b.URL, path); code != 200 {
		t.Fatalf("another instance: %d for a list allocated here", code)
	}
	// An instance that cannot sign (no key) shows that a lookup of an unknown list signs
	// nothing: 404, where signing would have failed with 500.
	unsigned := e.instance(t, token.NewSigner(time.Hour), nil)
	if code, _, _ := get(unsigned.URL, path); code != 500 {
		t.Fatalf("known list on an instance that cannot sign: %d; want 500 (the signature fails)", code)
	}
	if code, _, body := get(unsigned.URL, unknown); code != 404 {
		t.Fatalf("unknown list on an instance that cannot sign: %d %s; want 404 without signing", code, body)
	}
	// Made-up ids from one address never lock that address out of real lists (a resource server
	// behind the same NAT or load balancer would fail its tokens), and the same made-up id asked
	// again is answered from memory, without another lookup.
	counting := &countingStore{Store: e.store}
	e.store = counting
	fresh := e.instance(t, e.signer, ratelimit.New(ratelimit.Config{Burst: 1, PerMinute: 1, Now: e.clock}))
	for i := range 30 {
		if code, _, _ := get(fresh.URL, "/oauth2/statuslists/"+strings.Repeat(string(rune('b'+i%5)), 26)); code != 404 {
			t.Fatalf("made-up list %d: %d, want 404", i, code)
		}
	}
	if n := counting.lookups.Load(); n != 5 {
		t.Fatalf("30 requests for 5 made-up ids made %d store lookups, want 5", n)
	}
	other := strings.Repeat("h", 26) // a list another instance allocated, with no revoked entry yet
	if err := e.store.CreateStatusList(context.Background(), rescind.StatusList{ID: other, CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(fresh.URL, "/oauth2/statuslists/"+other); code != 200 {
		t.Fatalf("a real list after 30 made-up ones from the same address: %d, want 200", code)
	}
	e.advance(11 * time.Second)
	if code, _, _ := get(fresh.URL, "/oauth2/statuslists/"+strings.Repeat("b", 26)); code != 404 || counting.lookups.Load() != 7 {
		t.Fatalf("a made-up id after the negative cache expired: %d, %d lookups (want 404 after one more)", code, counting.lookups.Load())
	}
	for _, bad := range []string{"/oauth2/statuslists/short", "/oauth2/statuslists/" + strings.Repeat("A", 26), "/oauth2/statuslists/..%2f"} {
		if code, _, _ := get(e.srv.URL, bad); code != 404 {
			t.Fatalf("%s: %d", bad, code)
		}
	}
}

// TestEventStreamFollowsTheSubscriber: a stream does not outlive its client's registration: once
// the client is deleted (or its secret changes), the stream ends at the next wake-up instead of
// carrying on with the permissions it authenticated with.
func TestEventStreamFollowsTheSubscriber(t *testing.T) {
	for _, change := range []string{"deleted", "secret changed"} {
		t.Run(change, func(t *testing.T) {
			e := newEnv(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hr, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/oauth2/revocations/events", nil)
			hr.Header.Set("Authorization", basic("rs-a", rsSecret))
			res, err := http.DefaultClient.Do(hr)
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("subscribe: %v %v", res, err)
			}
			defer res.Body.Close()
			lines := make(chan string)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(res.Body)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			// A revocation for the subscriber's audience arrives.
			tok := e.mintOpaque(t, "app", "", []string{resA})
			if r := e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(tok), user: "app", pass: appSecret}); r.status != 200 {
				t.Fatal(r.status)
			}
			e.server.NotifyRevocations()
			for l := range lines {
				if strings.HasPrefix(l, "data: ") {
					break
				}
			}
			c, _ := e.store.GetClient(context.Background(), "rs-a")
			now := e.clock()
			if _, err := e.store.DeleteClient(context.Background(), "rs-a", now, rescind.Revocation{Kind: rescind.RevokeClient, Key: "rs-a",
				ClientID: "rs-a", RevokedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if change == "secret changed" {
				c.SecretHash += "x" // as a secret rotation would
				if err := e.store.CreateClient(context.Background(), c); err != nil {
					t.Fatal(err)
				}
			}
			e.clients.Invalidate("rs-a")
			// Another revocation for its audience: the stream must not carry it.
			tok2 := e.mintOpaque(t, "app", "", []string{resA})
			if r := e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(tok2), user: "app", pass: appSecret}); r.status != 200 {
				t.Fatal(r.status)
			}
			e.server.NotifyRevocations()
			for l := range lines {
				// The subscriber's own cut-off record may slip out, read by the shared reader
				// in the moment between the deletion's commit and the cache's invalidation: it
				// is the subscriber's own record, which it may always see. Nothing else may.
				if strings.HasPrefix(l, "data: ") && !strings.Contains(l, `"type":"client","client_id":"rs-a"`) {
					t.Fatalf("the stream went on after the subscriber was %s: %s", change, l)
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("the stream did not end after the subscriber was %s", change)
			}
		})
	}
}

// countingStore counts status list lookups.
type countingStore struct {
	rescind.Store
	lookups atomic.Int64
}

func (c *countingStore) GetStatusList(ctx context.Context, id string) (rescind.StatusList, error) {
	c.lookups.Add(1)
	return c.Store.GetStatusList(ctx, id)
}
