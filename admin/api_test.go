package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/internal/unixsock"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

// adminToken is the bearer token of the TCP handler in these tests.
var adminToken = strings.Repeat("t0ken", 8)

// syncBuffer is a log sink the server writes and the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// api is the admin API on a real SQLite store, served over loopback twice: as on the Unix socket
// (no token) and as on TCP (bearer token).
type api struct {
	t        *testing.T
	store    *sqlite.Store
	state    *revocation.State
	keys     *keys.Manager
	socket   *httptest.Server // Handler(false)
	tcp      *httptest.Server // Handler(true)
	logs     *syncBuffer
	clients  *clientreg.Registry
	bodies   []string // every response body, for TestNothingSecretEchoed
	bodiesMu sync.Mutex
}

func newAPI(t *testing.T) *api { return newAPIStore(t, nil) }

// rsaKey is one RSA key for every test's RS256 chain: keys.Open makes one at each first start,
// and generating it takes half a second.
var rsaKey struct {
	once sync.Once
	key  token.SigningKey
	err  error
}

// sharedRSA is token.NewSigningKey, but an RS256 key reuses rsaKey's material (its kid and
// creation time its own).
func sharedRSA(kid, alg string, created time.Time) (token.SigningKey, error) {
	if alg != token.AlgRS256 {
		return token.NewSigningKey(kid, alg, created)
	}
	rsaKey.once.Do(func() { rsaKey.key, rsaKey.err = token.NewSigningKey("", alg, created) })
	k := rsaKey.key
	k.ID, k.CreatedAt = kid, created
	return k, rsaKey.err
}

// newAPIStore is newAPI with the Server's store wrapped by wrap (if set).
func newAPIStore(t *testing.T, wrap func(rescind.Store) rescind.Store) *api {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	a := &api{t: t, store: st, state: revocation.NewState(), logs: &syncBuffer{}}
	var server rescind.Store = st
	if wrap != nil {
		server = wrap(st)
	}
	com := revocation.NewCommitter(server, a.state, nil)
	box, _ := secret.NewBox([]byte("0123456789abcdef0123456789abcdef"))
	if a.keys, err = keys.Open(ctx, keys.Config{Store: server, Box: box, OnRetire: func(r rescind.Revocation) { com.Apply(r) },
		NewSigningKey: sharedRSA}); err != nil {
		t.Fatal(err)
	}
	clients, _ := clientreg.New(clientreg.Config{Store: server})
	a.clients = clients
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "rescind_test_total", Help: "a test metric"}))
	s := admin.New(admin.Config{Store: server, Clients: clients, Revoked: a.state, Committer: com, Keys: a.keys,
		Signer: a.keys.Signer(), TokenTTL: func(d time.Duration) time.Duration { return cmp(d, time.Hour) },
		Gatherer: reg, Token: adminToken, Backup: st.Backup, HashParams: secret.Params{Memory: 64, Time: 1, Threads: 1},
		Logger: slog.New(slog.NewTextHandler(a.logs, nil))})
	a.socket = httptest.NewServer(s.Handler(false))
	a.tcp = httptest.NewServer(s.Handler(true))
	t.Cleanup(func() {
		a.socket.Close()
		a.tcp.Close()
		com.Close()
		st.Close()
	})
	return a
}

// cmp returns d, or def if d is zero.
func cmp(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// reply is one answer of the API.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a map, or a list of maps.
func (r reply) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

func (r reply) list(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return l
}

// do sends a request to srv with authorization auth (none if empty).
func (a *api) do(srv *httptest.Server, auth, method, path, body string) reply {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a.bodiesMu.Lock()
	a.bodies = append(a.bodies, string(b))
	a.bodiesMu.Unlock()
	return reply{res.StatusCode, res.Header, b}
}

// call sends a request over the socket handler.
func (a *api) call(method, path, body string) reply { return a.do(a.socket, "", method, path, body) }

// wantError checks an error answer: status, JSON ErrorResponse with code.
func wantError(t *testing.T, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q %s; want %d JSON", r.status, r.header.Get("Content-Type"), r.body, status)
	}
	var e admin.ErrorResponse
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error != code || e.Description == "" {
		t.Fatalf("error body %s; want error %q with a description", r.body, code)
	}
}

// createClient registers a client over the socket and returns its info.
func (a *api) createClient(body string) admin.ClientInfo {
	a.t.Helper()
	r := a.call("POST", "/admin/v1/clients", body)
	if r.status != http.StatusCreated {
		a.t.Fatalf("create client: %d %s", r.status, r.body)
	}
	var c admin.ClientInfo
	json.Unmarshal(r.body, &c)
	return c
}

// TestClientRoutes: registering, listing, showing, changing, rotating the secret of and deleting
// clients: the answers' shapes, and the 400 and 404 of each route.
func TestClientRoutes(t *testing.T) {
	a := newAPI(t)
	cc := a.createClient(`{"client_name":"Backend","scope":"read write read","token_ttl":600}`)
	if cc.ClientID == "" || len(cc.ClientSecret) < 40 || cc.Name != "Backend" || cc.Scope != "read write" || cc.TokenTTL != 600 ||
		!slices.Equal(cc.GrantTypes, []string{"client_credentials"}) || cc.TokenEndpointAuthMethod != "client_secret_basic" ||
		cc.TokenFormat != "" || cc.RedirectURIs == nil || cc.CreatedAt.IsZero() {
		t.Fatalf("created %+v", cc)
	}
	pub := a.createClient(`{"client_name":"SPA","public":true,"redirect_uris":["https://spa.example/cb"],"token_format":"jwt","first_party":true}`)
	if pub.ClientSecret != "" || pub.TokenEndpointAuthMethod != "none" || pub.TokenTTL != 3600 || pub.TokenFormat != "jwt" || !pub.FirstParty || cc.FirstParty ||
		!slices.Equal(pub.GrantTypes, []string{"authorization_code", "refresh_token"}) {
		t.Fatalf("public client %+v", pub)
	}
	web := a.createClient(`{"client_name":"Web","redirect_uris":["https://web.example/cb"]}`)
	if !slices.Equal(web.GrantTypes, []string{"authorization_code", "refresh_token", "client_credentials"}) {
		t.Fatalf("confidential client with redirect URIs: grant types %v", web.GrantTypes)
	}

	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string           // error code; "" on success
		check                    func(reply) bool // on success
	}{
		{"create: not JSON", "POST", "/admin/v1/clients", `client_name=x`, 400, "invalid_request", nil},
		{"create: unknown field", "POST", "/admin/v1/clients", `{"client_name":"x","admin":true}`, 400, "invalid_request", nil},
		{"create: no name", "POST", "/admin/v1/clients", `{"scope":"read"}`, 400, "invalid_client_metadata", nil},
		{"create: name too long", "POST", "/admin/v1/clients", `{"client_name":"` + strings.Repeat("n", 201) + `"}`, 400, "invalid_client_metadata", nil},
		{"create: unknown grant type", "POST", "/admin/v1/clients", `{"client_name":"x","grant_types":["password"]}`, 400, "invalid_client_metadata", nil},
		{"create: public client_credentials", "POST", "/admin/v1/clients", `{"client_name":"x","public":true,"grant_types":["client_credentials"]}`, 400, "invalid_client_metadata", nil},
		{"create: public with secret", "POST", "/admin/v1/clients", `{"client_name":"x","public":true,"client_secret":"abc"}`, 400, "invalid_client_metadata", nil},
		{"create: bad scope", "POST", "/admin/v1/clients", `{"client_name":"x","scope":"re\"ad"}`, 400, "invalid_client_metadata", nil},
		{"create: negative ttl", "POST", "/admin/v1/clients", `{"client_name":"x","token_ttl":-1}`, 400, "invalid_client_metadata", nil},
		{"create: ttl over the cap", "POST", "/admin/v1/clients", `{"client_name":"x","token_ttl":2678400}`, 400, "invalid_client_metadata", nil},
		{"create: unknown token format", "POST", "/admin/v1/clients", `{"client_name":"x","token_format":"paseto"}`, 400, "invalid_client_metadata", nil},
		{"create: bad redirect", "POST", "/admin/v1/clients", `{"client_name":"x","redirect_uris":["https://a.example/cb#frag"]}`, 400, "invalid_redirect_uri", nil},
		{"create: allowed resources", "POST", "/admin/v1/clients", `{"client_name":"agent","allowed_resources":["https://api.example","https://api.example","urn:x:y"]}`, 201, "", func(r reply) bool {
			var c admin.ClientInfo
			json.Unmarshal(r.body, &c)
			a.store.DeleteClient(context.Background(), c.ClientID, time.Now(), rescind.Revocation{Kind: rescind.RevokeClient, Key: c.ClientID, ClientID: c.ClientID})
			return slices.Equal(c.AllowedResources, []string{"https://api.example", "urn:x:y"}) && !c.DynamicallyRegistered && c.Registration == "admin"
		}},
		{"create: allowed resource with a fragment", "POST", "/admin/v1/clients", `{"client_name":"x","allowed_resources":["https://api.example/#f"]}`, 400, "invalid_client_metadata", nil},
		{"create: allowed resource not absolute", "POST", "/admin/v1/clients", `{"client_name":"x","allowed_resources":["api.example"]}`, 400, "invalid_client_metadata", nil},

		{"list", "GET", "/admin/v1/clients", "", 200, "", func(r reply) bool {
			var l []admin.ClientInfo
			json.Unmarshal(r.body, &l)
			return len(l) == 3 && l[0].ClientSecret == "" && l[1].ClientSecret == "" && l[2].ClientSecret == ""
		}},
		{"get", "GET", "/admin/v1/clients/" + cc.ClientID, "", 200, "", func(r reply) bool {
			var c admin.ClientInfo
			json.Unmarshal(r.body, &c)
			return c.ClientID == cc.ClientID && c.Scope == "read write" && c.ClientSecret == ""
		}},
		{"get: unknown", "GET", "/admin/v1/clients/nope", "", 404, "not_found", nil},

		{"update", "PATCH", "/admin/v1/clients/" + web.ClientID, `{"client_name":"Web 2","scope":"read","token_ttl":120,"redirect_uris":["https://web.example/cb2"]}`, 200, "", func(r reply) bool {
			var c admin.ClientInfo
			json.Unmarshal(r.body, &c)
			return c.Name == "Web 2" && c.Scope == "read" && c.TokenTTL == 120 && slices.Equal(c.RedirectURIs, []string{"https://web.example/cb2"}) && c.ClientSecret == ""
		}},
		{"update: first party", "PATCH", "/admin/v1/clients/" + pub.ClientID, `{"first_party":false}`, 200, "", func(r reply) bool {
			var c admin.ClientInfo
			json.Unmarshal(r.body, &c)
			stored, _ := a.store.GetClient(context.Background(), pub.ClientID)
			return !c.FirstParty && !stored.FirstParty && c.Name == "SPA"
		}},
		{"update: unknown", "PATCH", "/admin/v1/clients/nope", `{"client_name":"x"}`, 404, "not_found", nil},
		{"update: not JSON", "PATCH", "/admin/v1/clients/" + web.ClientID, `{`, 400, "invalid_request", nil},
		{"update: unknown field", "PATCH", "/admin/v1/clients/" + web.ClientID, `{"public":true}`, 400, "invalid_request", nil},
		{"update: empty name", "PATCH", "/admin/v1/clients/" + web.ClientID, `{"client_name":" "}`, 400, "invalid_client_metadata", nil},
		{"update: bad scope", "PATCH", "/admin/v1/clients/" + web.ClientID, `{"scope":"a\\b"}`, 400, "invalid_client_metadata", nil},
		{"update: bad ttl", "PATCH", "/admin/v1/clients/" + web.ClientID, `{"token_ttl":-5}`, 400, "invalid_client_metadata", nil},
		{"update: bad redirect", "PATCH", "/admin/v1/clients/" + web.ClientID, `{"redirect_uris":["http://evil.example/cb"]}`, 400, "invalid_redirect_uri", nil},
		{"update: allowed resources", "PATCH", "/admin/v1/clients/" + cc.ClientID, `{"allowed_resources":["https://api.example"]}`, 200, "", func(r reply) bool {
			var c admin.ClientInfo
			json.Unmarshal(r.body, &c)
			return slices.Equal(c.AllowedResources, []string{"https://api.example"})
		}},
		{"update: bad allowed resource", "PATCH", "/admin/v1/clients/" + cc.ClientID, `{"allowed_resources":["nope"]}`, 400, "invalid_client_metadata", nil},

		{"rotate secret", "POST", "/admin/v1/clients/" + cc.ClientID + "/rotate-secret", `{"overlap":"1h"}`, 200, "", func(r reply) bool {
			var c admin.ClientInfo
			json.Unmarshal(r.body, &c)
			return len(c.ClientSecret) >= 40 && c.ClientSecret != cc.ClientSecret && c.PreviousSecretExpiresAt != nil
		}},
		{"rotate secret, empty body", "POST", "/admin/v1/clients/" + cc.ClientID + "/rotate-secret", "", 200, "", func(r reply) bool {
			var c admin.ClientInfo
			json.Unmarshal(r.body, &c)
			return len(c.ClientSecret) >= 40 && c.PreviousSecretExpiresAt != nil // the default overlap
		}},
		{"rotate secret, no overlap", "POST", "/admin/v1/clients/" + cc.ClientID + "/rotate-secret", `{"overlap":0}`, 200, "", func(r reply) bool {
			var c admin.ClientInfo
			json.Unmarshal(r.body, &c)
			return len(c.ClientSecret) >= 40 && c.PreviousSecretExpiresAt == nil
		}},
		{"rotate secret: public", "POST", "/admin/v1/clients/" + pub.ClientID + "/rotate-secret", "", 400, "invalid_request", nil},
		{"rotate secret: unknown", "POST", "/admin/v1/clients/nope/rotate-secret", "", 404, "not_found", nil},
		{"rotate secret: overlap too long", "POST", "/admin/v1/clients/" + cc.ClientID + "/rotate-secret", `{"overlap":"800h"}`, 400, "invalid_request", nil},
		{"rotate secret: negative overlap", "POST", "/admin/v1/clients/" + cc.ClientID + "/rotate-secret", `{"overlap":-1}`, 400, "invalid_request", nil},
		{"rotate secret: bad overlap", "POST", "/admin/v1/clients/" + cc.ClientID + "/rotate-secret", `{"overlap":"soon"}`, 400, "invalid_request", nil},

		{"delete", "DELETE", "/admin/v1/clients/" + pub.ClientID, "", 204, "", func(r reply) bool { return len(r.body) == 0 }},
		{"delete: again", "DELETE", "/admin/v1/clients/" + pub.ClientID, "", 404, "not_found", nil},
		{"get: deleted", "GET", "/admin/v1/clients/" + pub.ClientID, "", 404, "not_found", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := a.call(tc.method, tc.path, tc.body)
			if tc.code != "" {
				wantError(t, r, tc.status, tc.code)
				return
			}
			if r.status != tc.status || !tc.check(r) {
				t.Fatalf("%d %s; want %d", r.status, r.body, tc.status)
			}
			if r.status != 204 && (r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store") {
				t.Fatalf("headers %v", r.header)
			}
		})
	}
	// The deletion revoked every token of the client: a cut-off record in the state.
	if !a.state.IsRevoked("a-jti", "", pub.ClientID, time.Now().Add(-time.Minute)) {
		t.Fatal("deleted client not cut off")
	}
	// What the changes stored is what the store has.
	c, err := a.store.GetClient(context.Background(), web.ClientID)
	if err != nil || c.Name != "Web 2" || c.TokenTTL != 2*time.Minute {
		t.Fatalf("stored %+v %v", c, err)
	}
	if c, _ := a.store.GetClient(context.Background(), cc.ClientID); !slices.Equal(c.AllowedResources, []string{"https://api.example"}) {
		t.Fatalf("stored allowed resources %v", c.AllowedResources)
	}
}

// TestUserRoutes: creating, listing and deleting users, and the bulk revocation by user and by
// client.
func TestUserRoutes(t *testing.T) {
	a := newAPI(t)
	app := a.createClient(`{"client_name":"App","redirect_uris":["https://app.example/cb"]}`)
	r := a.call("POST", "/admin/v1/users", `{"username":"alice","password":"pw-alice"}`)
	var alice admin.UserInfo
	json.Unmarshal(r.body, &alice)
	if r.status != 201 || alice.ID == "" || alice.Username != "alice" || alice.CreatedAt.IsZero() {
		t.Fatalf("create user: %d %s", r.status, r.body)
	}
	a.call("POST", "/admin/v1/users", `{"username":"bob","password":"pw-bob"}`)
	grant := func(user string) rescind.Grant {
		id, _ := secret.NewID()
		g, err := a.store.SaveGrant(context.Background(), rescind.Grant{ID: id, ClientID: app.ClientID, UserID: user, CreatedAt: time.Now(), LastUsedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	aliceGrant := grant(alice.ID)
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		check                    func(reply) bool
	}{
		{"create: taken", "POST", "/admin/v1/users", `{"username":"alice","password":"x"}`, 409, "already_exists", nil},
		{"create: no username", "POST", "/admin/v1/users", `{"password":"x"}`, 400, "invalid_request", nil},
		{"create: username too long", "POST", "/admin/v1/users", `{"username":"` + strings.Repeat("u", 101) + `","password":"x"}`, 400, "invalid_request", nil},
		{"create: no password", "POST", "/admin/v1/users", `{"username":"carol"}`, 400, "invalid_request", nil},
		{"create: password too long", "POST", "/admin/v1/users", `{"username":"carol","password":"` + strings.Repeat("p", 1025) + `"}`, 400, "invalid_request", nil},
		{"create: unknown field", "POST", "/admin/v1/users", `{"username":"carol","password":"x","admin":true}`, 400, "invalid_request", nil},
		{"list", "GET", "/admin/v1/users", "", 200, "", func(r reply) bool {
			var l []admin.UserInfo
			json.Unmarshal(r.body, &l)
			return len(l) == 2 && (l[0].Username == "alice" || l[1].Username == "alice")
		}},

		{"revoke-all: nothing named", "POST", "/admin/v1/revoke-all", `{}`, 400, "invalid_request", nil},
		{"revoke-all: not JSON", "POST", "/admin/v1/revoke-all", `user=alice`, 400, "invalid_request", nil},
		{"revoke-all: unknown user", "POST", "/admin/v1/revoke-all", `{"user":"nobody"}`, 404, "not_found", nil},
		{"revoke-all: unknown client", "POST", "/admin/v1/revoke-all", `{"client":"nope"}`, 404, "not_found", nil},
		{"revoke-all: user and client", "POST", "/admin/v1/revoke-all", `{"user":"alice","client":"` + app.ClientID + `"}`, 200, "", func(r reply) bool {
			var res admin.RevokeResult
			json.Unmarshal(r.body, &res)
			return res.GrantsRevoked == 1 && !res.ClientTokensRevoked && a.state.GrantRevoked(aliceGrant.ID)
		}},
		{"revoke-all: client", "POST", "/admin/v1/revoke-all", `{"client":"` + app.ClientID + `"}`, 200, "", func(r reply) bool {
			var res admin.RevokeResult
			json.Unmarshal(r.body, &res)
			return res.ClientTokensRevoked && a.state.IsRevoked("a-jti", "", app.ClientID, time.Now().Add(-time.Minute))
		}},

		{"delete", "DELETE", "/admin/v1/users/bob", "", 200, "", func(r reply) bool {
			var res admin.RevokeResult
			json.Unmarshal(r.body, &res)
			return res.GrantsRevoked == 0
		}},
		{"delete: again", "DELETE", "/admin/v1/users/bob", "", 404, "not_found", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := a.call(tc.method, tc.path, tc.body)
			if tc.code != "" {
				wantError(t, r, tc.status, tc.code)
				return
			}
			if r.status != tc.status || !tc.check(r) {
				t.Fatalf("%d %s; want %d", r.status, r.body, tc.status)
			}
		})
	}
	// Deleting a user ends their sessions and revokes their grants.
	g := grant(alice.ID)
	sess := a.session(alice.ID, "s-alice")
	r = a.call("DELETE", "/admin/v1/users/alice", "")
	var res admin.UserResult
	json.Unmarshal(r.body, &res)
	if r.status != 200 || res.GrantsRevoked != 1 || res.SessionsEnded != 1 || !a.state.GrantRevoked(g.ID) || !a.state.SessionEnded(sess.ID) {
		t.Fatalf("delete alice: %d %s", r.status, r.body)
	}
}

// session stores a session of the user, as a sign-in would, and returns it.
func (a *api) session(userID, id string) rescind.Session {
	a.t.Helper()
	ctx := context.Background()
	u, err := a.store.GetUser(ctx, userID)
	if err != nil {
		a.t.Fatal(err)
	}
	now := time.Now().UTC()
	s := rescind.Session{ID: id, Hash: "hash-" + id, UserID: userID, UserEpoch: u.Epoch, CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour), UserAgent: "Browser/1 (" + id + ")", Address: "192.0.2.1"}
	if err := a.store.CreateSession(ctx, s); err != nil {
		a.t.Fatal(err)
	}
	return s
}

// TestUserSessionRoutes: a person's sessions listed (never their secret or hash), all ended at
// once (every instance refuses them: here, the state this instance reads), and a new password
// that ends them and, asked to, revokes every grant; each audited, none echoing the password.
func TestUserSessionRoutes(t *testing.T) {
	a := newAPI(t)
	app := a.createClient(`{"client_name":"App","redirect_uris":["https://app.example/cb"]}`)
	var alice admin.UserInfo
	json.Unmarshal(a.call("POST", "/admin/v1/users", `{"username":"alice","password":"pw-alice"}`).body, &alice)
	a.call("POST", "/admin/v1/users", `{"username":"bob","password":"pw-bob"}`)
	bob, _ := a.store.GetUserByUsername(context.Background(), "bob")
	s1, s2, sb := a.session(alice.ID, "s1"), a.session(alice.ID, "s2"), a.session(bob.ID, "sb")
	gid, _ := secret.NewID()
	g, _ := a.store.SaveGrant(context.Background(), rescind.Grant{ID: gid, ClientID: app.ClientID, UserID: alice.ID, CreatedAt: time.Now(), LastUsedAt: time.Now()})

	r := a.call("GET", "/admin/v1/users/alice/sessions", "")
	l := r.list(t)
	if r.status != 200 || len(l) != 2 || l[0]["id"] != s1.ID || l[1]["id"] != s2.ID || l[0]["user_agent"] != s1.UserAgent ||
		l[0]["address"] != "192.0.2.1" || l[0]["created_at"] == nil || l[0]["last_seen_at"] == nil || l[0]["expires_at"] == nil ||
		l[0]["idle_expires_at"] == nil || strings.Contains(string(r.body), "hash") {
		t.Fatalf("sessions: %d %s", r.status, r.body)
	}
	wantError(t, a.call("GET", "/admin/v1/users/nobody/sessions", ""), 404, "not_found")
	wantError(t, a.call("POST", "/admin/v1/users/nobody/logout", ""), 404, "not_found")

	// user logout: every session of alice ends; her grants and bob's session stay.
	r = a.call("POST", "/admin/v1/users/alice/logout", "")
	var res admin.UserResult
	json.Unmarshal(r.body, &res)
	if r.status != 200 || res != (admin.UserResult{SessionsEnded: 2}) || !a.state.SessionEnded(s1.ID) || !a.state.SessionEnded(s2.ID) ||
		a.state.SessionEnded(sb.ID) || a.state.GrantRevoked(g.ID) {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if l := a.call("GET", "/admin/v1/users/alice/sessions", "").list(t); len(l) != 0 {
		t.Fatalf("sessions after logout: %v", l)
	}

	// set-password: bad requests change nothing.
	for name, tc := range map[string]struct {
		path, body string
		status     int
		code       string
	}{
		"not JSON":          {"/admin/v1/users/alice/password", "password=x", 400, "invalid_request"},
		"no password":       {"/admin/v1/users/alice/password", `{"revoke_grants":true}`, 400, "invalid_request"},
		"password too long": {"/admin/v1/users/alice/password", `{"password":"` + strings.Repeat("p", 1025) + `"}`, 400, "invalid_request"},
		"unknown field":     {"/admin/v1/users/alice/password", `{"password":"x","admin":true}`, 400, "invalid_request"},
		"unknown user":      {"/admin/v1/users/nobody/password", `{"password":"x"}`, 404, "not_found"},
	} {
		t.Run("set-password: "+name, func(t *testing.T) { wantError(t, a.call("PUT", tc.path, tc.body), tc.status, tc.code) })
	}
	s3 := a.session(alice.ID, "s3")
	r = a.call("PUT", "/admin/v1/users/alice/password", `{"password":"new password"}`)
	json.Unmarshal(r.body, &res)
	if r.status != 200 || res != (admin.UserResult{SessionsEnded: 1}) || !a.state.SessionEnded(s3.ID) || a.state.GrantRevoked(g.ID) {
		t.Fatalf("set-password: %d %s", r.status, r.body)
	}
	u, _ := a.store.GetUser(context.Background(), alice.ID)
	if ok, _ := secret.Verify("new password", u.PasswordHash); !ok {
		t.Fatal("the new password does not verify")
	}
	s4 := a.session(alice.ID, "s4")
	r = a.call("PUT", "/admin/v1/users/alice/password", `{"password":"newer password","revoke_grants":true}`)
	json.Unmarshal(r.body, &res)
	if r.status != 200 || res != (admin.UserResult{SessionsEnded: 1, GrantsRevoked: 1}) || !a.state.SessionEnded(s4.ID) || !a.state.GrantRevoked(g.ID) {
		t.Fatalf("set-password --revoke-grants: %d %s", r.status, r.body)
	}
	// Audited: each session's end, each password change.
	counts := map[string]int{}
	for _, e := range a.call("GET", "/admin/v1/audit", "").list(t) {
		counts[e["action"].(string)+" "+e["reason"].(string)]++
	}
	if counts["revoke_session user logout"] != 2 || counts["set_password password set"] != 2 || counts["revoke_session password set"] != 2 ||
		counts["revoke_grant password set"] != 1 {
		t.Fatalf("audit: %v", counts)
	}
	if strings.Contains(a.logs.String(), "new password") {
		t.Fatal("the log shows the password")
	}
}

// TestKeyAuditMetricsRoutes: listing, rotating and retiring keys; the audit log; the metrics.
func TestKeyAuditMetricsRoutes(t *testing.T) {
	a := newAPI(t)
	r := a.call("GET", "/admin/v1/keys", "")
	initial := r.list(t)
	if r.status != 200 || len(initial) != 4 { // a sealing key, a signing key per algorithm
		t.Fatalf("keys: %d %s", r.status, r.body)
	}
	var signing string
	for _, k := range initial {
		if k["use"] == "sig" && k["alg"] == "ES256" {
			signing = k["kid"].(string)
		}
	}
	// The only signing key cannot be retired: nothing would take over.
	wantError(t, a.call("POST", "/admin/v1/keys/"+signing+"/retire", ""), 409, "key_in_use")
	wantError(t, a.call("POST", "/admin/v1/keys/nope/retire", ""), 404, "not_found")
	wantError(t, a.call("POST", "/admin/v1/keys/rotate", `{"now":"yes"}`), 400, "invalid_request")
	wantError(t, a.call("POST", "/admin/v1/keys/rotate", `{"later":true}`), 400, "invalid_request")

	r = a.call("POST", "/admin/v1/keys/rotate", "")
	var rot admin.RotateKeysResponse
	json.Unmarshal(r.body, &rot)
	if r.status != 200 || rot.KeyID == "" || rot.SigningKeyID == "" || !rot.SigningActivates.After(time.Now()) {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	r = a.call("POST", "/admin/v1/keys/rotate", `{"now":true}`)
	json.Unmarshal(r.body, &rot)
	if r.status != 200 || rot.SigningActivates.After(time.Now()) {
		t.Fatalf("rotate now: %d %s", r.status, r.body)
	}
	// Now the first signing key is replaced: it can be retired, and is refused from then on.
	r = a.call("POST", "/admin/v1/keys/"+signing+"/retire", "")
	var ret admin.RetireKeyResponse
	json.Unmarshal(r.body, &ret)
	if r.status != 200 || ret.KID != signing || ret.State != "retired" || ret.Retired == nil {
		t.Fatalf("retire: %d %s", r.status, r.body)
	}
	if l := a.call("GET", "/admin/v1/keys", "").list(t); len(l) != 12 {
		t.Fatalf("%d keys after two rotations; want 12 (3 sealing keys, 3 of each of 3 signing algorithms)", len(l))
	}

	// The audit log, newest first: the client deletion after the key retirement.
	gone := a.createClient(`{"client_name":"Gone"}`)
	a.call("DELETE", "/admin/v1/clients/"+gone.ClientID, "")
	r = a.call("GET", "/admin/v1/audit?limit=1", "")
	if l := r.list(t); r.status != 200 || len(l) != 1 || l[0]["actor"] != "admin" || l[0]["target"] != gone.ClientID ||
		l[0]["reason"] != "client deleted" || l[0]["at"] == "" {
		t.Fatalf("audit: %d %s", r.status, r.body)
	}
	if l := a.call("GET", "/admin/v1/audit", "").list(t); len(l) != 2 || l[1]["target"] != signing || l[1]["reason"] != "key retired" {
		t.Fatalf("audit without limit: %v", l)
	}
	for _, q := range []string{"0", "10001", "ten", "-1"} {
		wantError(t, a.call("GET", "/admin/v1/audit?limit="+q, ""), 400, "invalid_request")
	}

	r = a.call("GET", "/metrics", "")
	if r.status != 200 || !strings.Contains(string(r.body), "rescind_test_total 0") {
		t.Fatalf("metrics: %d %s", r.status, r.body)
	}
}

// TestBackupRoute: over the socket a backup writes a copy of the SQLite database to a new file,
// and never over an existing one.
func TestBackupRoute(t *testing.T) {
	a := newAPI(t)
	a.createClient(`{"client_name":"Kept"}`)
	path := filepath.Join(t.TempDir(), "copy.db")
	r := a.call("POST", "/admin/v1/backup", `{"path":"`+path+`"}`)
	var res admin.BackupResponse
	json.Unmarshal(r.body, &res)
	if r.status != 200 || res.Path != path || res.Bytes <= 0 {
		t.Fatalf("backup: %d %s", r.status, r.body)
	}
	copied, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	if cs, err := copied.ListClients(context.Background()); err != nil || len(cs) != 1 || cs[0].Name != "Kept" {
		t.Fatalf("the copy holds %v (%v)", cs, err)
	}
	wantError(t, a.call("POST", "/admin/v1/backup", `{"path":"`+path+`"}`), 409, "already_exists")
}

// TestMethodsAndPaths: every route's path asked with another method is a 405 naming the methods
// it serves; unknown paths are 404; both as JSON errors.
func TestMethodsAndPaths(t *testing.T) {
	a := newAPI(t)
	routes := []struct{ path, methods string }{
		{"/admin/v1/clients", "GET, POST"},
		{"/admin/v1/clients/x", "DELETE, GET, PATCH"},
		{"/admin/v1/clients/x/rotate-secret", "POST"},
		{"/admin/v1/keys", "GET"},
		{"/admin/v1/keys/rotate", "POST"},
		{"/admin/v1/keys/x/retire", "POST"},
		{"/admin/v1/users", "GET, POST"},
		{"/admin/v1/users/x", "DELETE, PATCH"},
		{"/admin/v1/users/x/sessions", "GET"},
		{"/admin/v1/users/x/logout", "POST"},
		{"/admin/v1/users/x/password", "PUT"},
		{"/admin/v1/revoke-all", "POST"},
		{"/admin/v1/audit", "GET"},
		{"/admin/v1/backup", "POST"},
		{"/metrics", "GET"},
	}
	for _, rt := range routes {
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if strings.Contains(rt.methods, m) {
				continue
			}
			r := a.call(m, rt.path, "")
			wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
			if r.header.Get("Allow") != rt.methods {
				t.Errorf("%s %s: Allow %q, want %q", m, rt.path, r.header.Get("Allow"), rt.methods)
			}
		}
	}
	for _, p := range []string{"/", "/admin", "/admin/v1", "/admin/v2/clients", "/admin/v1/clients/x/y", "/admin/v1/keys/x", "/admin/v1/users/x/grants"} {
		wantError(t, a.call("GET", p, ""), http.StatusNotFound, "not_found")
	}
}

// TestTCPAuth: over TCP every request, to a route or not, needs the admin bearer token: without
// it, with another, or with another scheme it is a 401 with WWW-Authenticate and nothing runs.
func TestTCPAuth(t *testing.T) {
	a := newAPI(t)
	requests := []struct{ method, path, body string }{
		{"GET", "/admin/v1/clients", ""}, {"POST", "/admin/v1/clients", `{"client_name":"sneaky"}`},
		{"POST", "/admin/v1/users", `{"username":"sneaky","password":"x"}`}, {"POST", "/admin/v1/keys/rotate", ""},
		{"POST", "/admin/v1/revoke-all", `{"client":"x"}`}, {"GET", "/admin/v1/audit", ""}, {"GET", "/metrics", ""},
		{"GET", "/nope", ""}, {"PUT", "/admin/v1/keys", ""},
	}
	for _, auth := range []string{"", "Bearer ", "Bearer wrong", "Bearer " + adminToken + "x", "Basic " + adminToken, "bearer" + adminToken, adminToken} {
		for _, rq := range requests {
			r := a.do(a.tcp, auth, rq.method, rq.path, rq.body)
			wantError(t, r, http.StatusUnauthorized, "unauthorized")
			if r.header.Get("WWW-Authenticate") != `Bearer realm="rescind-admin"` {
				t.Fatalf("%q %s %s: WWW-Authenticate %q", auth, rq.method, rq.path, r.header.Get("WWW-Authenticate"))
			}
		}
	}
	if l := a.call("GET", "/admin/v1/clients", "").list(t); len(l) != 0 {
		t.Fatalf("an unauthenticated request created %v", l)
	}
	if l := a.call("GET", "/admin/v1/users", "").list(t); len(l) != 0 {
		t.Fatalf("an unauthenticated request created %v", l)
	}
	if !strings.Contains(a.logs.String(), "failed admin authentication") {
		t.Fatal("failed authentications are not logged")
	}
	// The right token: the API answers as over the socket.
	right := "Bearer " + adminToken
	if r := a.do(a.tcp, right, "POST", "/admin/v1/clients", `{"client_name":"ok"}`); r.status != 201 {
		t.Fatalf("with the token: %d %s", r.status, r.body)
	}
	wantError(t, a.do(a.tcp, right, "GET", "/nope", ""), 404, "not_found")
	wantError(t, a.do(a.tcp, right, "PUT", "/admin/v1/keys", ""), 405, "method_not_allowed")
	wantError(t, a.do(a.tcp, right, "POST", "/admin/v1/backup", `{"path":"/tmp/x.db"}`), 403, "forbidden")
}

// TestTCPWithoutToken: a server configured without an admin token accepts no request over TCP,
// an empty bearer token included.
func TestTCPWithoutToken(t *testing.T) {
	s := admin.New(admin.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(s.Handler(true))
	defer srv.Close()
	for _, auth := range []string{"", "Bearer ", "Bearer x"} {
		req, _ := http.NewRequest("GET", srv.URL+"/admin/v1/clients", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 {
			t.Fatalf("%q: %d", auth, res.StatusCode)
		}
	}
}

// TestNothingSecretEchoed: client secrets, passwords and their hashes appear in no answer and no
// log line, except a client secret in the one answer that created it (registration, rotation).
func TestNothingSecretEchoed(t *testing.T) {
	a := newAPI(t)
	const chosen = "chosen-secret-0123456789-abcdefghij"
	const pw = "alice-password-9876543210"
	mine := a.createClient(`{"client_name":"Mine","client_secret":"` + chosen + `"}`)
	if mine.ClientSecret != chosen {
		t.Fatalf("registration answered secret %q", mine.ClientSecret)
	}
	gen := a.createClient(`{"client_name":"Generated"}`)
	r := a.call("POST", "/admin/v1/clients/"+mine.ClientID+"/rotate-secret", `{"overlap":0}`)
	var rotated admin.ClientInfo
	json.Unmarshal(r.body, &rotated)
	if gen.ClientSecret == "" || rotated.ClientSecret == "" || rotated.ClientSecret == chosen {
		t.Fatalf("secrets shown at creation: %q, at rotation: %q", gen.ClientSecret, rotated.ClientSecret)
	}
	a.bodies = nil

	// Everything else the API can be asked, successes and failures, with the secrets as input.
	a.call("GET", "/admin/v1/clients", "")
	a.call("GET", "/admin/v1/clients/"+mine.ClientID, "")
	a.call("PATCH", "/admin/v1/clients/"+mine.ClientID, `{"client_name":"Mine 2"}`)
	a.call("POST", "/admin/v1/clients", `{"client_name":"","client_secret":"`+chosen+`"}`)
	a.call("POST", "/admin/v1/clients", `{"client_name":"x","client_secret":"`+chosen+`","bogus":1}`)
	a.call("POST", "/admin/v1/clients", `{"client_name":"x","public":true,"client_secret":"`+chosen+`"}`)
	a.call("POST", "/admin/v1/clients/"+gen.ClientID+"/rotate-secret", `{"client_secret":"`+chosen+`","overlap":"forever"}`)
	a.call("POST", "/admin/v1/users", `{"username":"alice","password":"`+pw+`"}`)
	a.call("POST", "/admin/v1/users", `{"username":"alice","password":"`+pw+`"}`)
	a.call("POST", "/admin/v1/users", `{"username":"","password":"`+pw+`"}`)
	a.call("POST", "/admin/v1/users", `{"username":"carol","password":"`+pw+`","x":1}`)
	a.call("GET", "/admin/v1/users", "")
	a.call("GET", "/admin/v1/keys", "")
	a.call("GET", "/admin/v1/audit", "")
	a.call("PUT", "/admin/v1/users/alice/password", `{"password":"`+pw+`"}`)
	a.call("PUT", "/admin/v1/users/alice/password", `{"password":"`+pw+`","x":1}`)
	a.call("GET", "/admin/v1/users/alice/sessions", "")
	a.call("DELETE", "/admin/v1/users/alice", "")
	a.call("DELETE", "/admin/v1/clients/"+gen.ClientID, "")
	a.do(a.tcp, "Bearer "+chosen, "GET", "/admin/v1/clients", "")

	forbidden := []string{chosen, gen.ClientSecret, rotated.ClientSecret, pw, "$argon2id", "password_hash", "secret_hash"}
	for _, body := range a.bodies {
		for _, f := range forbidden {
			if strings.Contains(body, f) {
				t.Errorf("an answer shows %q: %s", f, body)
			}
		}
	}
	logs := a.logs.String()
	for _, f := range append(forbidden, adminToken) {
		if strings.Contains(logs, f) {
			t.Errorf("the log shows %q:\n%s", f, logs)
		}
	}
	// A key is shown by what it is, never by its material.
	for _, k := range a.call("GET", "/admin/v1/keys", "").list(t) {
		for f := range k {
			if !slices.Contains([]string{"kid", "use", "alg", "created", "state", "activates", "retires", "retired"}, f) {
				t.Errorf("a key is shown with %q", f)
			}
		}
	}
}

// TestClient: the CLI's client over the Unix socket and over TCP with the token, every method
// once; API errors come back as *admin.APIError with the API's code.
func TestClient(t *testing.T) {
	a := newAPI(t)
	ctx := context.Background()
	sock := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := unixsock.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.socket.Config.Handler}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for name, c := range map[string]*admin.Client{
		"socket": admin.NewUnixClient(sock),
		"tcp":    {BaseURL: a.tcp.URL + "/", Token: adminToken, HTTP: a.tcp.Client()},
	} {
		t.Run(name, func(t *testing.T) {
			cl, err := c.CreateClient(ctx, admin.CreateClientRequest{Name: "CLI " + name, Scope: "read"})
			if err != nil || cl.ClientSecret == "" {
				t.Fatalf("CreateClient: %+v %v", cl, err)
			}
			if got, err := c.GetClient(ctx, cl.ClientID); err != nil || got.Name != "CLI "+name {
				t.Fatalf("GetClient: %+v %v", got, err)
			}
			if l, err := c.ListClients(ctx); err != nil || len(l) == 0 {
				t.Fatalf("ListClients: %v %v", l, err)
			}
			name2 := "CLI 2"
			if got, err := c.UpdateClient(ctx, cl.ClientID, admin.UpdateClientRequest{Name: &name2}); err != nil || got.Name != name2 {
				t.Fatalf("UpdateClient: %+v %v", got, err)
			}
			zero := admin.Duration(0)
			if got, err := c.RotateSecret(ctx, cl.ClientID, admin.RotateSecretRequest{Overlap: &zero}); err != nil || got.ClientSecret == cl.ClientSecret {
				t.Fatalf("RotateSecret: %+v %v", got, err)
			}
			if u, err := c.CreateUser(ctx, admin.CreateUserRequest{Username: "u-" + name, Password: "pw"}); err != nil || u.Username != "u-"+name {
				t.Fatalf("CreateUser: %+v %v", u, err)
			}
			if l, err := c.ListUsers(ctx); err != nil || len(l) == 0 {
				t.Fatalf("ListUsers: %v %v", l, err)
			}
			if res, err := c.RevokeAll(ctx, admin.RevokeAllRequest{Client: cl.ClientID}); err != nil || !res.ClientTokensRevoked {
				t.Fatalf("RevokeAll: %+v %v", res, err)
			}
			if l, err := c.UserSessions(ctx, "u-"+name); err != nil || len(l) != 0 {
				t.Fatalf("UserSessions: %v %v", l, err)
			}
			if res, err := c.LogoutUser(ctx, "u-"+name); err != nil || res.SessionsEnded != 0 {
				t.Fatalf("LogoutUser: %+v %v", res, err)
			}
			if res, err := c.SetPassword(ctx, "u-"+name, admin.SetPasswordRequest{Password: "pw2", RevokeGrants: true}); err != nil || res.SessionsEnded != 0 {
				t.Fatalf("SetPassword: %+v %v", res, err)
			}
			if _, err := c.DeleteUser(ctx, "u-"+name); err != nil {
				t.Fatalf("DeleteUser: %v", err)
			}
			if err := c.DeleteClient(ctx, cl.ClientID); err != nil {
				t.Fatalf("DeleteClient: %v", err)
			}
			if rot, err := c.RotateKeys(ctx, admin.RotateKeysRequest{}); err != nil || rot.KeyID == "" {
				t.Fatalf("RotateKeys: %+v %v", rot, err)
			}
			if l, err := c.ListKeys(ctx); err != nil || len(l) < 4 {
				t.Fatalf("ListKeys: %v %v", l, err)
			}
			if l, err := c.Audit(ctx, 5); err != nil || len(l) == 0 || len(l) > 5 {
				t.Fatalf("Audit: %v %v", l, err)
			}
			if m, err := c.Metrics(ctx); err != nil || !strings.Contains(m, "rescind_test_total") {
				t.Fatalf("Metrics: %q %v", m, err)
			}
			var ae *admin.APIError
			_, err = c.GetClient(ctx, "nope")
			if !errors.As(err, &ae) || ae.Status != 404 || ae.ErrorResponse.Error != "not_found" || !strings.Contains(err.Error(), "HTTP 404") {
				t.Fatalf("GetClient(nope): %v", err)
			}
			_, err = c.RetireKey(ctx, "nope")
			if !errors.As(err, &ae) || ae.Status != 404 {
				t.Fatalf("RetireKey(nope): %v", err)
			}
			path := filepath.Join(t.TempDir(), "b.db")
			_, err = c.Backup(ctx, path)
			switch name {
			case "socket":
				if _, serr := os.Stat(path); err != nil || serr != nil {
					t.Fatalf("Backup over the socket: %v %v", err, serr)
				}
			case "tcp":
				if !errors.As(err, &ae) || ae.Status != 403 {
					t.Fatalf("Backup over TCP: %v", err)
				}
			}
		})
	}

	// No server there, and one that answers something other than the API.
	if _, err := admin.NewUnixClient(filepath.Join(t.TempDir(), "none.sock")).ListClients(ctx); err == nil ||
		!strings.Contains(err.Error(), "cannot reach the server's admin API") {
		t.Fatalf("no server: %v", err)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer plain.Close()
	_, err = (&admin.Client{BaseURL: plain.URL}).ListClients(ctx)
	var ae *admin.APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.ErrorResponse.Error != "bad gateway" || ae.Error() != "bad gateway (HTTP 502)" {
		t.Fatalf("a proxy's error: %v", err)
	}
}

// failingStore is a store whose every method the admin API calls fails once failing is set, with
// an error whose text must not reach the caller.
type failingStore struct {
	rescind.Store
	failing *atomic.Bool
}

var errDisk = errors.New("disk I/O error at /var/lib/rescind/db page 4711")

func (f failingStore) err() error {
	if f.failing.Load() {
		return errDisk
	}
	return nil
}

func (f failingStore) CreateClient(ctx context.Context, c rescind.Client) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.CreateClient(ctx, c)
}

func (f failingStore) GetClient(ctx context.Context, id string) (rescind.Client, error) {
	if err := f.err(); err != nil {
		return rescind.Client{}, err
	}
	return f.Store.GetClient(ctx, id)
}

func (f failingStore) ListClients(ctx context.Context) ([]rescind.Client, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.ListClients(ctx)
}

func (f failingStore) UpdateClient(ctx context.Context, id string, u rescind.ClientUpdate) (rescind.Client, error) {
	if err := f.err(); err != nil {
		return rescind.Client{}, err
	}
	return f.Store.UpdateClient(ctx, id, u)
}

func (f failingStore) RotateClientSecret(ctx context.Context, id, hash string, previousUntil time.Time) (rescind.Client, error) {
	if err := f.err(); err != nil {
		return rescind.Client{}, err
	}
	return f.Store.RotateClientSecret(ctx, id, hash, previousUntil)
}

func (f failingStore) DeleteClient(ctx context.Context, id string, now time.Time, rev rescind.Revocation) ([]rescind.Revocation, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.DeleteClient(ctx, id, now, rev)
}

func (f failingStore) CreateUser(ctx context.Context, u rescind.User) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.CreateUser(ctx, u)
}

func (f failingStore) GetUserByUsername(ctx context.Context, name string) (rescind.User, error) {
	if err := f.err(); err != nil {
		return rescind.User{}, err
	}
	return f.Store.GetUserByUsername(ctx, name)
}

func (f failingStore) ListUsers(ctx context.Context) ([]rescind.User, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.ListUsers(ctx)
}

func (f failingStore) ListAudit(ctx context.Context, limit int) ([]rescind.AuditEntry, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.ListAudit(ctx, limit)
}

func (f failingStore) ListKeys(ctx context.Context, use string) ([]rescind.Key, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.ListKeys(ctx, use)
}

func (f failingStore) CreateKey(ctx context.Context, k rescind.Key) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.CreateKey(ctx, k)
}

// TestStoreFailures: when the store fails, every route answers a 500 server_error that says
// nothing of the failure, the failure is logged, and nothing is half done.
func TestStoreFailures(t *testing.T) {
	var failing atomic.Bool
	a := newAPIStore(t, func(st rescind.Store) rescind.Store { return failingStore{Store: st, failing: &failing} })
	c := a.createClient(`{"client_name":"Existing"}`)
	a.call("POST", "/admin/v1/users", `{"username":"alice","password":"pw"}`)
	failing.Store(true)
	for _, rq := range []struct{ method, path, body string }{
		{"POST", "/admin/v1/clients", `{"client_name":"New"}`},
		{"GET", "/admin/v1/clients", ""},
		{"GET", "/admin/v1/clients/" + c.ClientID, ""},
		{"PATCH", "/admin/v1/clients/" + c.ClientID, `{"client_name":"Changed"}`},
		{"POST", "/admin/v1/clients/" + c.ClientID + "/rotate-secret", ""},
		{"DELETE", "/admin/v1/clients/" + c.ClientID, ""},
		{"POST", "/admin/v1/users", `{"username":"bob","password":"pw"}`},
		{"GET", "/admin/v1/users", ""},
		{"DELETE", "/admin/v1/users/alice", ""},
		{"GET", "/admin/v1/users/alice/sessions", ""},
		{"POST", "/admin/v1/users/alice/logout", ""},
		{"PUT", "/admin/v1/users/alice/password", `{"password":"pw2"}`},
		{"POST", "/admin/v1/revoke-all", `{"user":"alice"}`},
		{"POST", "/admin/v1/revoke-all", `{"client":"` + c.ClientID + `"}`},
		{"GET", "/admin/v1/audit", ""},
		{"GET", "/admin/v1/keys", ""},
		{"POST", "/admin/v1/keys/rotate", ""},
	} {
		logged := strings.Count(a.logs.String(), errDisk.Error())
		r := a.call(rq.method, rq.path, rq.body)
		wantError(t, r, http.StatusInternalServerError, "server_error")
		if strings.Count(a.logs.String(), errDisk.Error()) == logged {
			t.Errorf("%s %s: the store's failure is not logged", rq.method, rq.path)
		}
		if strings.Contains(string(r.body), "disk") || strings.Contains(string(r.body), "/var/lib") {
			t.Errorf("%s %s: the answer shows the store's error: %s", rq.method, rq.path, r.body)
		}
	}
	failing.Store(false)
	got, err := a.store.GetClient(context.Background(), c.ClientID)
	if err != nil || got.Name != "Existing" || got.SecretHash == "" {
		t.Fatalf("the client after failed changes: %+v %v", got, err)
	}
	if cs, _ := a.store.ListClients(context.Background()); len(cs) != 1 {
		t.Fatalf("clients after a failed registration: %v", cs)
	}
}

// TestRegistrationTokenRoutes: initial access tokens are made (24h by default), shown once,
// stored as a hash, listed without the token, and deleted; bad expiries are refused.
func TestRegistrationTokenRoutes(t *testing.T) {
	a := newAPI(t)
	r := a.call("POST", "/admin/v1/registration-tokens", "")
	var made admin.RegistrationTokenInfo
	json.Unmarshal(r.body, &made)
	if r.status != 201 || !strings.HasPrefix(made.Token, "rsc_iat_") || made.ExpiresAt.Sub(made.CreatedAt) != 24*time.Hour || made.Expired {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	stored, err := a.store.GetRegistrationToken(context.Background(), token.Hash(made.Token))
	if err != nil || stored.ID != made.ID {
		t.Fatalf("stored as %+v, %v; want found by its hash", stored, err)
	}
	r = a.call("POST", "/admin/v1/registration-tokens", `{"expires":"90m"}`)
	var short admin.RegistrationTokenInfo
	json.Unmarshal(r.body, &short)
	if r.status != 201 || short.ExpiresAt.Sub(short.CreatedAt) != 90*time.Minute {
		t.Fatalf("create 90m: %d %s", r.status, r.body)
	}
	for _, body := range []string{`{"expires":0}`, `{"expires":"-1h"}`, `{"expires":"9000h"}`, `{"expires":"soon"}`, `{"ttl":"1h"}`, `[`,
		`{"scope":"read \"quoted\""}`, `{"scope":["read"]}`, `{"allowed_resources":["not a uri"]}`, `{"allowed_resources":"https://a.example"}`} {
		wantError(t, a.call("POST", "/admin/v1/registration-tokens", body), 400, "invalid_request")
	}
	// Scopes: stored (repeats dropped) and shown; "" is none allowed, told from none given.
	for _, tc := range []struct {
		body string
		want *string
		// stored is the token's stored Scopes.
		stored []string
	}{
		{`{"scope":"deploy read deploy"}`, strPtr("deploy read"), []string{"deploy", "read"}},
		{`{"scope":""}`, strPtr(""), []string{}},
		{`{"expires":"1h"}`, nil, nil},
		{`{"scope":"read","allowed_resources":["https://api.example","https://api.example","urn:x"]}`, strPtr("read"), []string{"read"}},
	} {
		r := a.call("POST", "/admin/v1/registration-tokens", tc.body)
		var got admin.RegistrationTokenInfo
		json.Unmarshal(r.body, &got)
		if r.status != 201 || (got.Scope == nil) != (tc.want == nil) || (got.Scope != nil && *got.Scope != *tc.want) {
			t.Fatalf("create %s: %d %s", tc.body, r.status, r.body)
		}
		st, err := a.store.GetRegistrationToken(context.Background(), token.Hash(got.Token))
		if err != nil || !slices.Equal(st.Scopes, tc.stored) || (st.Scopes == nil) != (tc.stored == nil) {
			t.Fatalf("%s stored as %#v, %v; want %#v", tc.body, st.Scopes, err, tc.stored)
		}
		if wantRes := map[bool][]string{true: {"https://api.example", "urn:x"}}[strings.Contains(tc.body, "allowed_resources")]; !slices.Equal(st.AllowedResources, wantRes) ||
			!slices.Equal(got.AllowedResources, wantRes) {
			t.Fatalf("%s: allowed resources stored %v, shown %v; want %v", tc.body, st.AllowedResources, got.AllowedResources, wantRes)
		}
		if r := a.call("DELETE", "/admin/v1/registration-tokens/"+got.ID, ""); r.status != 204 {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
	}
	r = a.call("GET", "/admin/v1/registration-tokens", "")
	if r.status != 200 || strings.Contains(string(r.body), made.Token) || strings.Contains(string(r.body), "rsc_iat_") {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	var list []admin.RegistrationTokenInfo
	json.Unmarshal(r.body, &list)
	if len(list) != 2 || list[0].ID != made.ID || list[1].ID != short.ID {
		t.Fatalf("list: %+v", list)
	}
	if r := a.call("DELETE", "/admin/v1/registration-tokens/"+made.ID, ""); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantError(t, a.call("DELETE", "/admin/v1/registration-tokens/"+made.ID, ""), 404, "not_found")
	if _, err := a.store.GetRegistrationToken(context.Background(), token.Hash(made.Token)); err == nil {
		t.Fatal("a deleted token is still stored")
	}
}

// TestCreatedClientInSnapshot: a client created through the API is in the server's view of
// every client (the origins CORS lets read the token endpoint, scopes_supported) at once, not
// after clientreg.SnapshotTTL: an operator creates a browser app's client and the app works.
func TestCreatedClientInSnapshot(t *testing.T) {
	a := newAPI(t)
	ctx := context.Background()
	const origin = "https://spa.example"
	before, err := a.clients.Snapshot(ctx) // cached from here on
	if err != nil || before.PublicOrigin(origin) {
		t.Fatalf("before: %v, origin allowed %v", err, before.PublicOrigin(origin))
	}
	a.createClient(`{"client_name":"SPA","public":true,"grant_types":["authorization_code"],` +
		`"redirect_uris":["https://spa.example/cb"],"scope":"photos"}`)
	after, err := a.clients.Snapshot(ctx)
	if err != nil || !after.PublicOrigin(origin) || !slices.Contains(after.Scopes, "photos") {
		t.Fatalf("after creating the client: %v, origin allowed %v, scopes %v", err, after.PublicOrigin(origin), after.Scopes)
	}
}

// TestUpdateSelfRegisteredClient: an operator's change of a self-registered client is kept apart
// from what the client asserts itself (audit 16 #2): its scope is a limit (scope_limit), its own
// scopes are kept, and "scope" shows what it may be granted; its name and redirect URIs, which it
// would set back, are refused; an operator's client is changed as before.
func TestUpdateSelfRegisteredClient(t *testing.T) {
	a := newAPI(t)
	ctx := context.Background()
	if err := a.store.CreateClient(ctx, rescind.Client{ID: "dyn", Name: "Dyn", Public: true, GrantTypes: []string{rescind.GrantAuthorizationCode},
		RedirectURIs: []string{"https://d.example/cb"}, Scopes: []string{"read", "admin"}, Registration: rescind.RegistrationDynamic}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body, scope, limit string // limit "-" for none shown
	}{
		{"limited to read", `{"scope":"read"}`, "read", "read"},
		{"limited to none", `{"scope":""}`, "", ""},
		{"limited beyond its own", `{"scope":"read write"}`, "read", "read write"},
	} {
		r := a.call("PATCH", "/admin/v1/clients/dyn", tc.body)
		var info admin.ClientInfo
		if r.status != 200 || json.Unmarshal(r.body, &info) != nil || info.Scope != tc.scope || info.ScopeLimit == nil || *info.ScopeLimit != tc.limit {
			t.Fatalf("%s: %d %s; want scope %q, scope_limit %q", tc.name, r.status, r.body, tc.scope, tc.limit)
		}
		c, _ := a.store.GetClient(ctx, "dyn")
		if !slices.Equal(c.Scopes, []string{"read", "admin"}) || strings.Join(c.ScopeLimit, " ") != tc.limit || c.ScopeLimit == nil {
			t.Fatalf("%s: stored scopes %v, limit %#v", tc.name, c.Scopes, c.ScopeLimit)
		}
	}
	for _, body := range []string{`{"client_name":"Renamed"}`, `{"redirect_uris":["https://other.example/cb"]}`} {
		wantError(t, a.call("PATCH", "/admin/v1/clients/dyn", body), 400, "invalid_client_metadata")
	}
	// An operator's client: scope replaced, no limit.
	op := a.createClient(`{"client_name":"Op","scope":"read write"}`)
	r := a.call("PATCH", "/admin/v1/clients/"+op.ClientID, `{"scope":"read","client_name":"Op 2"}`)
	if r.status != 200 || strings.Contains(string(r.body), "scope_limit") {
		t.Fatalf("operator's client: %d %s", r.status, r.body)
	}
	if c, _ := a.store.GetClient(ctx, op.ClientID); !slices.Equal(c.Scopes, []string{"read"}) || c.ScopeLimit != nil || c.Name != "Op 2" {
		t.Fatalf("operator's client stored as %+v", c)
	}
}

func strPtr(s string) *string { return &s }
