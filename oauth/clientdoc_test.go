package oauth_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientdoc"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/oauth"
)

// docHost serves client metadata documents over https on loopback.
type docHost struct {
	*httptest.Server
	mu   sync.Mutex
	docs map[string]string
}

func newDocHost(t *testing.T) *docHost {
	h := &docHost{docs: map[string]string{}}
	h.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		doc, ok := h.docs[r.URL.Path]
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, doc)
	}))
	t.Cleanup(h.Close)
	return h
}

// publish serves a document at path, for the client id its URL is, with redirect URIs.
func (h *docHost) publish(path, name string, redirects ...string) string {
	id := h.URL + path
	h.mu.Lock()
	h.docs[path] = fmt.Sprintf(`{"client_id":%q,"client_name":%q,"redirect_uris":["%s"],"grant_types":["authorization_code","refresh_token"],
		"token_endpoint_auth_method":"none","client_uri":"https://agent.example"}`, id, name, strings.Join(redirects, `","`))
	h.mu.Unlock()
	return id
}

// withDocuments turns metadata documents on, trusting the host's certificate, fetched from
// loopback as in development.
func withDocuments(h *docHost, limiter *ratelimit.Limiter) func(*env, *oauth.Config) {
	return func(e *env, c *oauth.Config) {
		pool := x509.NewCertPool()
		pool.AddCert(h.Certificate())
		c.ClientDocuments = clientdoc.New(clientdoc.Config{AllowLoopback: true, RootCAs: pool, Now: e.clock})
		c.DocumentLimiter = limiter
	}
}

// TestClientMetadataDocuments: an https URL as client_id. The person sees the document's name
// and the host that serves it; the code flow with PKCE gets tokens at the token endpoint under
// that client_id; the client is then known like any other (connected apps page, where the
// person revokes it); what the document lists bounds the redirect URIs, and a refused document
// is an error page, never a redirect.
func TestClientMetadataDocuments(t *testing.T) {
	h := newDocHost(t)
	e := newEnvWith(t, withDocuments(h, nil))
	const redirect = "https://agent.example/cb"
	id := h.publish("/agent.json", "Doc Agent", redirect)
	host := strings.TrimPrefix(h.URL, "https://")

	if md := e.do(req{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t); md["client_id_metadata_document_supported"] != true {
		t.Fatalf("metadata: %v", md)
	}
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("m")
	res, page := b.get("/oauth2/authorize?" + authorizeQuery(id, redirect, "read", challenge))
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "Doc Agent") || !strings.Contains(page, "<strong>"+host+"</strong>") {
		t.Fatalf("consent page %d:\n%s", res.StatusCode, page)
	}
	if _, err := e.store.GetClient(context.Background(), id); err == nil {
		t.Fatal("the client was stored before anyone allowed it")
	}
	q := b.approve(authorizeQuery(id, redirect, "read", challenge))
	form := codeForm(q.Get("code"), redirect, verifier)
	form.Set("client_id", id)
	r := e.do(req{path: "/oauth2/token", body: form.Encode()})
	if r.status != 200 {
		t.Fatalf("token request: %d %s", r.status, r.body)
	}
	access, refresh := r.json(t)["access_token"].(string), r.json(t)["refresh_token"].(string)
	if !e.active(access) {
		t.Fatal("inactive token")
	}
	c, err := e.store.GetClient(context.Background(), id)
	if err != nil || c.Registration != rescind.RegistrationMetadataDocument || !c.Public || c.Name != "Doc Agent" {
		t.Fatalf("stored client %+v, %v", c, err)
	}
	// A client that claims a secret is refused at the token endpoint like any public client.
	r = e.do(req{path: "/oauth2/token", body: "grant_type=refresh_token&refresh_token=" + refresh, user: id, pass: "guess"})
	wantError(t, r, 401, "invalid_client")

	// The connected apps page lists it, with its host; revoking there kills its tokens.
	_, apps := b.get("/account/apps")
	if !strings.Contains(apps, "Doc Agent") || !strings.Contains(apps, "from "+host) {
		t.Fatalf("apps page:\n%s", apps)
	}
	revoke := hidden(apps)
	revoke.Set("grant_id", regexp.MustCompile(`name="grant_id" value="([^"]+)"`).FindStringSubmatch(apps)[1])
	if res := b.post("/account/apps/revoke", revoke); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if e.active(access) {
		t.Fatal("the revoked app's access token is active")
	}
	r = e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {id}}.Encode()})
	wantError(t, r, 400, "invalid_grant")

	// The document changes (after its max-age): the next authorization uses it, and the stored
	// copy follows.
	h.publish("/agent.json", "Doc Agent 2", "https://agent.example/cb2")
	e.advance(61 * time.Second)
	res, _ = b.get("/oauth2/authorize?" + authorizeQuery(id, redirect, "read", challenge))
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
		t.Fatalf("a redirect URI the document no longer lists: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	b.approve(authorizeQuery(id, "https://agent.example/cb2", "read", challenge))
	if c, _ := e.clients.Get(context.Background(), id); c.Name != "Doc Agent 2" || c.RedirectURIs[0] != "https://agent.example/cb2" {
		t.Fatalf("stored copy not updated: %+v", c)
	}

	for _, tc := range []struct {
		name, query string
		page        bool   // an error page (no redirect)
		errCode     string // else the redirect's error
	}{
		{"a redirect URI not listed", authorizeQuery(id, "https://evil.example/cb", "read", challenge), true, ""},
		{"a document that is not there", authorizeQuery(h.URL+"/missing.json", redirect, "read", challenge), true, ""},
		{"a document naming another client_id", authorizeQuery(h.publish("/liar.json", "Liar")+"?x", redirect, "read", challenge), true, ""},
		{"an http URL off loopback", authorizeQuery("http://agent.example/agent.json", redirect, "read", challenge), true, ""},
		{"no PKCE", strings.Replace(authorizeQuery(id, "https://agent.example/cb2", "read", challenge), "code_challenge=", "x=", 1), false, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, page := b.get("/oauth2/authorize?" + tc.query)
			loc := res.Header.Get("Location")
			if tc.page {
				if res.StatusCode != http.StatusBadRequest || loc != "" {
					t.Fatalf("%d %q:\n%s", res.StatusCode, loc, page)
				}
				return
			}
			u, _ := url.Parse(loc)
			if res.StatusCode != http.StatusSeeOther || u.Query().Get("error") != tc.errCode {
				t.Fatalf("%d %q", res.StatusCode, loc)
			}
		})
	}

	// Deleted by the operator: its URL is refused while the deletion's revocation lasts.
	if err := e.deleteClient(context.Background(), id, "admin", "test"); err != nil {
		t.Fatal(err)
	}
	if res, page := b.get("/oauth2/authorize?" + authorizeQuery(id, "https://agent.example/cb2", "read", challenge)); res.StatusCode != http.StatusBadRequest ||
		!strings.Contains(page, "removed") {
		t.Fatalf("a deleted document client: %d\n%s", res.StatusCode, page)
	}
}

// TestClientMetadataDocumentsOffAndLimited: without metadata documents an URL is an unknown
// client; with them, the documents fetched for one address are bounded (cached ones are free).
func TestClientMetadataDocumentsOffAndLimited(t *testing.T) {
	h := newDocHost(t)
	off := newEnv(t)
	id := h.publish("/a.json", "A", "https://agent.example/cb")
	_, challenge := pkcePair("o")
	b := off.browser()
	b.login("alice")
	if res, page := b.get("/oauth2/authorize?" + authorizeQuery(id, "https://agent.example/cb", "read", challenge)); res.StatusCode != http.StatusBadRequest ||
		!strings.Contains(page, "unknown client") {
		t.Fatalf("documents off: %d\n%s", res.StatusCode, page)
	}
	// A document client stored while they were on (its tokens still live) is not authorized
	// anew from its stored copy.
	off.addClient(t, rescind.Client{ID: id, Name: "A", Public: true, Registration: rescind.RegistrationMetadataDocument,
		GrantTypes: []string{rescind.GrantAuthorizationCode}, RedirectURIs: []string{"https://agent.example/cb"}})
	if res, page := b.get("/oauth2/authorize?" + authorizeQuery(id, "https://agent.example/cb", "read", challenge)); res.StatusCode != http.StatusBadRequest ||
		!strings.Contains(page, "does not accept now") {
		t.Fatalf("a stored document client, documents off: %d\n%s", res.StatusCode, page)
	}

	var e *env
	e = newEnvWith(t, func(env *env, c *oauth.Config) {
		withDocuments(h, ratelimit.New(ratelimit.Config{Burst: 2, PerMinute: 1, Now: env.clock}))(env, c)
	})
	b = e.browser()
	b.login("alice")
	for i, path := range []string{"/a.json", "/b.json", "/a.json", "/c.json"} {
		doc := h.publish(path, "App", "https://agent.example/cb")
		res, page := b.get("/oauth2/authorize?" + authorizeQuery(doc, "https://agent.example/cb", "read", challenge))
		limited := strings.Contains(page, "Too many")
		if want := i == 3; limited != want || (!limited && res.StatusCode != http.StatusOK) {
			t.Fatalf("document %d (%s): %d, limited %v; want limited %v", i, path, res.StatusCode, limited, want)
		}
	}
}

// TestClientMetadataDocumentScopesBounded: --scopes bounds a metadata-document client as it
// bounds a registration (audit 16 #4): its document's scopes beyond --scopes are dropped (asking
// for one is invalid_scope; the consent page never shows it), and a document naming none of
// them is refused. A self-registered client stored with a scope --scopes no longer has (as
// after narrowing it) cannot ask for it either.
func TestClientMetadataDocumentScopesBounded(t *testing.T) {
	h := newDocHost(t)
	e := newEnvWith(t, func(e *env, c *oauth.Config) {
		withDocuments(h, nil)(e, c)
		c.ScopesSupported = []string{"read"}
	})
	const redirect = "https://agent.example/cb"
	publish := func(path, scope string) string {
		id := h.URL + path
		h.mu.Lock()
		h.docs[path] = fmt.Sprintf(`{"client_id":%q,"client_name":"Doc","redirect_uris":[%q],"scope":%q}`, id, redirect, scope)
		h.mu.Unlock()
		return id
	}
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("m")
	refusedScope := func(client string) {
		t.Helper()
		res, _ := b.get("/oauth2/authorize?" + authorizeQuery(client, redirect, "admin", challenge))
		u, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusSeeOther || u.Query().Get("error") != "invalid_scope" {
			t.Fatalf("%s asking for admin: %d %q; want invalid_scope", client, res.StatusCode, res.Header.Get("Location"))
		}
	}

	wide := publish("/wide.json", "read admin")
	refusedScope(wide)
	res, page := b.get("/oauth2/authorize?" + authorizeQuery(wide, redirect, "", challenge))
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "<li>read</li>") || strings.Contains(page, "admin") {
		t.Fatalf("consent page %d should show read and not admin:\n%s", res.StatusCode, page)
	}
	form := codeForm(b.approve(authorizeQuery(wide, redirect, "read", challenge)).Get("code"), redirect, verifier)
	form.Set("client_id", wide)
	if r := e.do(req{path: "/oauth2/token", body: form.Encode()}); r.status != 200 || r.json(t)["scope"] != "read" {
		t.Fatalf("token: %d %s; want scope read", r.status, r.body)
	}
	if c, _ := e.store.GetClient(context.Background(), wide); len(c.Scopes) != 1 || c.Scopes[0] != "read" {
		t.Fatalf("stored scopes %v, want [read]", c.Scopes)
	}

	only := publish("/admin.json", "admin")
	res, page = b.get("/oauth2/authorize?" + authorizeQuery(only, redirect, "", challenge))
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "names no scope this server supports") {
		t.Fatalf("a document naming only unsupported scopes: %d\n%s", res.StatusCode, page)
	}

	// A dynamic client stored with admin, as registered before --scopes was narrowed to read.
	e.addClient(t, rescind.Client{ID: "olddyn", Name: "Old", Public: true, GrantTypes: []string{rescind.GrantAuthorizationCode},
		RedirectURIs: []string{redirect}, Scopes: []string{"read", "admin"}, Registration: rescind.RegistrationDynamic})
	refusedScope("olddyn")
}

// TestOperatorLimitOfSelfRegisteredClientKept: an operator's limit of a self-registered client
// (client update --scope, admin.updateOf: Client.ScopeLimit; --allowed-resource) is not undone
// by the client (audit 16 #2): neither by its metadata document's next authorization, which
// stores the document again, nor by a dynamic client's own RFC 7592 update; and the stored
// copy's allowed resources bound a metadata-document client at the authorization endpoint.
func TestOperatorLimitOfSelfRegisteredClientKept(t *testing.T) {
	h := newDocHost(t)
	e := newEnvWith(t, func(e *env, c *oauth.Config) {
		withDocuments(h, nil)(e, c)
		c.Registration = oauth.RegisterOpen
	})
	ctx := context.Background()
	const redirect = "https://agent.example/cb"
	id := h.URL + "/agent.json"
	publish := func(name string) {
		h.mu.Lock()
		h.docs["/agent.json"] = fmt.Sprintf(`{"client_id":%q,"client_name":%q,"redirect_uris":[%q],"scope":"read admin"}`, id, name, redirect)
		h.mu.Unlock()
	}
	publish("Doc")
	b := e.browser()
	b.login("alice")
	_, challenge := pkcePair("m")
	b.approve(authorizeQuery(id, redirect, "read", challenge))
	read, allowed := []string{"read"}, []string{resA}
	limit := func(id string) {
		t.Helper()
		if _, err := e.store.UpdateClient(ctx, id, rescind.ClientUpdate{ScopeLimit: &read, AllowedResources: &allowed}); err != nil {
			t.Fatal(err)
		}
		e.clients.Invalidate(id)
	}
	wantRedirectError := func(client, scope, resource, code string) {
		t.Helper()
		q, _ := url.ParseQuery(authorizeQuery(client, redirect, scope, challenge))
		if resource != "" {
			q.Set("resource", resource)
		}
		res, _ := b.get("/oauth2/authorize?" + q.Encode())
		u, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusSeeOther || u.Query().Get("error") != code {
			t.Fatalf("%s asking for %q %q: %d %q; want %s", client, scope, resource, res.StatusCode, res.Header.Get("Location"), code)
		}
	}
	limit(id)
	wantRedirectError(id, "admin", "", "invalid_scope")
	wantRedirectError(id, "read", resB, "invalid_target")
	// The document changes (its name) and is stored again at the next authorization: the limit stays.
	publish("Doc 2")
	e.advance(61 * time.Second) // after its max-age
	verifier, challenge2 := pkcePair("n")
	q := b.approve(authorizeQuery(id, redirect, "", challenge2))
	form := codeForm(q.Get("code"), redirect, verifier)
	form.Set("client_id", id)
	r := e.do(req{path: "/oauth2/token", body: form.Encode()})
	if r.status != 200 || r.json(t)["scope"] != "read" || !slices.Equal(e.audienceOf(t, r.json(t)["access_token"].(string)), []string{resA}) {
		t.Fatalf("token after the document changed: %d %s; want scope read for %s", r.status, r.body, resA)
	}
	if c, _ := e.store.GetClient(ctx, id); c.Name != "Doc 2" || !slices.Equal(c.ScopeLimit, read) || !slices.Equal(c.AllowedResources, allowed) {
		t.Fatalf("stored copy after the document changed: limit %v, allowed resources %v", c.ScopeLimit, c.AllowedResources)
	}

	// A dynamic client's own update (RFC 7592 PUT) restores neither.
	reg := e.register(`{"redirect_uris":["https://d.example/cb"],"scope":"read admin"}`, "").registration(t)
	limit(reg.ClientID)
	u := e.do(req{method: "PUT", path: "/oauth2/register/" + reg.ClientID, contentType: "application/json", rawAuth: "Bearer " + reg.RegistrationAccessToken,
		body: `{"client_id":"` + reg.ClientID + `","redirect_uris":["` + redirect + `"],"scope":"read admin"}`})
	if u.status != 200 {
		t.Fatalf("PUT: %d %s", u.status, u.body)
	}
	if c, _ := e.store.GetClient(ctx, reg.ClientID); !slices.Equal(c.ScopeLimit, read) || !slices.Equal(c.AllowedResources, allowed) {
		t.Fatalf("after its PUT: limit %v, allowed resources %v", c.ScopeLimit, c.AllowedResources)
	}
	wantRedirectError(reg.ClientID, "admin", "", "invalid_scope")
}
