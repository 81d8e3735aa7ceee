package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/token"
)

// audienceOf returns the audience of an access token: a JWT's aud claim, or what introspection
// by the every-audience resource server says of an opaque one.
func (e *env) audienceOf(t *testing.T, tok string) []string {
	t.Helper()
	if token.LooksLikeJWT(tok) {
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Aud token.Audience `json:"aud"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		return c.Aud
	}
	r := e.do(req{path: "/oauth2/introspect", body: "token=" + url.QueryEscape(tok), user: "rs", pass: rsSecret})
	var in struct {
		Active bool           `json:"active"`
		Aud    token.Audience `json:"aud"`
	}
	if err := json.Unmarshal(r.body, &in); err != nil || !in.Active {
		t.Fatalf("introspection of the token: %s", r.body)
	}
	return in.Aud
}

// addClient stores c (with appSecret unless public) and drops any cached copy.
func (e *env) addClient(t *testing.T, c rescind.Client) {
	t.Helper()
	if !c.Public {
		c.SecretHash = mustHash(t, appSecret)
	}
	if err := e.store.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	e.clients.Invalidate(c.ID)
}

// TestResourceIndicatorsClientCredentials: RFC 8707 at the token endpoint for client
// credentials. Every resource requested becomes the audience (repeated parameters allowed, a
// string for one, an array for several, the issuer for none); a malformed one, or one the
// client may not request, is invalid_target; other parameters still may not repeat.
func TestResourceIndicatorsClientCredentials(t *testing.T) {
	e := newEnv(t)
	cc := []string{rescind.GrantClientCredentials}
	e.addClient(t, rescind.Client{ID: "limited", Name: "Limited", GrantTypes: cc, Scopes: []string{"read"},
		AllowedResources: []string{resA, resB}})
	e.addClient(t, rescind.Client{ID: "limitedjwt", Name: "Limited JWT", GrantTypes: cc, Scopes: []string{"read"},
		AllowedResources: []string{resA, resB}, TokenFormat: rescind.TokenFormatJWT})
	secrets["limited"], secrets["limitedjwt"] = appSecret, appSecret

	for _, tc := range []struct {
		name      string
		client    string
		resources []string
		code      string   // "" for success
		aud       []string // the audience expected on success
	}{
		{"none: the issuer", "app", nil, "", []string{issuer}},
		{"one", "app", []string{resA}, "", []string{resA}},
		{"two", "app", []string{resA, resB}, "", []string{resA, resB}},
		{"two, JWT", "jwtapp", []string{resA, resB}, "", []string{resA, resB}},
		{"repeated value counted once", "app", []string{resA, resA}, "", []string{resA}},
		{"a URN", "app", []string{resD}, "", []string{resD}},
		{"not a URI", "app", []string{"not a uri"}, "invalid_target", nil},
		{"relative", "app", []string{"/api"}, "invalid_target", nil},
		{"with a fragment", "app", []string{resA + "#x"}, "invalid_target", nil},
		{"empty", "app", []string{""}, "invalid_target", nil},
		{"one good, one malformed", "app", []string{resA, "nope"}, "invalid_target", nil},
		{"allowed", "limited", []string{resB}, "", []string{resB}},
		{"allowed, both, JWT", "limitedjwt", []string{resA, resB}, "", []string{resA, resB}},
		{"not allowed", "limited", []string{resD}, "invalid_target", nil},
		{"one allowed, one not", "limited", []string{resA, resD}, "invalid_target", nil},
		{"none asked by a limited client: all it is limited to, never the issuer", "limited", nil, "", []string{resA, resB}},
		{"none asked by a limited client, JWT", "limitedjwt", nil, "", []string{resA, resB}},
		{"the issuer asked by a limited client", "limited", []string{issuer}, "invalid_target", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}, "resource": tc.resources}
			r := e.do(req{path: "/oauth2/token", body: form.Encode(), user: tc.client, pass: secrets[tc.client]})
			if tc.code != "" {
				wantError(t, r, 400, tc.code)
				return
			}
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			tok := r.json(t)["access_token"].(string)
			if aud := e.audienceOf(t, tok); !slices.Equal(aud, tc.aud) {
				t.Fatalf("aud = %v, want %v", aud, tc.aud)
			}
			if token.LooksLikeJWT(tok) { // one value as a string, several as an array (RFC 7519 §4.1.3)
				payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
				var raw map[string]json.RawMessage
				json.Unmarshal(payload, &raw)
				if isArray := strings.HasPrefix(string(raw["aud"]), "["); isArray != (len(tc.aud) > 1) {
					t.Fatalf("aud encoded as %s", raw["aud"])
				}
			}
		})
	}
	r := e.do(req{path: "/oauth2/token", body: "grant_type=client_credentials&scope=read&scope=write&resource=" + url.QueryEscape(resA),
		user: "app", pass: appSecret})
	wantError(t, r, 400, "invalid_request") // only resource may repeat

	// Resources that would not fit a token in a header, together (each is fine alone).
	big := newEnvWith(t, func(_ *env, c *oauth.Config) { c.MaxBodyBytes = 64 << 10 })
	long := func(c string) string { return resA + "/" + strings.Repeat(c, 1500) }
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {long("a"), long("b"), long("c")}}
	wantError(t, big.do(req{path: "/oauth2/token", body: form.Encode(), user: "app", pass: appSecret}), 400, "invalid_target")
	form["resource"] = form["resource"][:2]
	if r := big.do(req{path: "/oauth2/token", body: form.Encode(), user: "app", pass: appSecret}); r.status != 200 {
		t.Fatalf("two long resources: %d %s", r.status, r.body)
	}
}

// TestResourceIndicatorsCodeFlow: the resources of the authorization request are recorded in
// the code and the grant, shown on the consent page, and are the audience of the tokens;
// the token request (code or refresh) may narrow them and never widen them, and a refused
// token request consumes nothing.
func TestResourceIndicatorsCodeFlow(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	const redirect = "https://app.example/cb"
	verifier, challenge := pkcePair("r")
	query := func(scope string, resources ...string) string {
		q, _ := url.ParseQuery(authorizeQuery("webapp", redirect, scope, challenge))
		q["resource"] = resources
		return q.Encode()
	}

	// The consent page names the resources.
	res, page := b.get("/oauth2/authorize?" + query("read", resA, resB))
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "<code>"+resA+"</code>") || !strings.Contains(page, "<code>"+resB+"</code>") {
		t.Fatalf("consent page %d does not name the resources:\n%s", res.StatusCode, page)
	}
	code := func(q string) string {
		t.Helper()
		v := b.approve(q)
		if v.Get("code") == "" {
			t.Fatalf("no code: %v", v)
		}
		return v.Get("code")
	}
	exchange := func(form url.Values, resources ...string) (resp, tokens) {
		form["resource"] = resources
		return e.exchange("webapp", appSecret, form)
	}

	c := code(query("read", resA, resB))
	// A resource the authorization did not name: refused, and the code is still good.
	r, _ := exchange(codeForm(c, redirect, verifier), resD)
	wantError(t, r, 400, "invalid_target")
	r, _ = exchange(codeForm(c, redirect, verifier), "bad uri")
	wantError(t, r, 400, "invalid_target")
	r, tk := exchange(codeForm(c, redirect, verifier))
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	if aud := e.audienceOf(t, tk.access); !slices.Equal(aud, []string{resA, resB}) {
		t.Fatalf("code exchanged without resource: aud %v, want both", aud)
	}
	// Another code, exchanged for one of them.
	r, tk2 := exchange(codeForm(code(query("read", resA, resB)), redirect, verifier), resB)
	if r.status != 200 || !slices.Equal(e.audienceOf(t, tk2.access), []string{resB}) {
		t.Fatalf("narrowed exchange: %d %s", r.status, r.body)
	}
	// Refresh: narrows from the refresh token's resources, which stay whole.
	refresh := func(rt string, resources ...string) (resp, tokens) {
		return exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, resources...)
	}
	r, _ = refresh(tk2.refresh, resD)
	wantError(t, r, 400, "invalid_target")
	r, tk3 := refresh(tk2.refresh, resA)
	if r.status != 200 || !slices.Equal(e.audienceOf(t, tk3.access), []string{resA}) {
		t.Fatalf("refresh for resA: %d %s", r.status, r.body)
	}
	r, tk4 := refresh(tk3.refresh)
	if r.status != 200 || !slices.Equal(e.audienceOf(t, tk4.access), []string{resA, resB}) {
		t.Fatalf("refresh without resource: %d %s, want both resources", r.status, r.body)
	}
	// A code without resources: the issuer's token, and no resource can be asked for later.
	c = code(query("read"))
	r, _ = exchange(codeForm(c, redirect, verifier), resA)
	wantError(t, r, 400, "invalid_target")
	r, tk5 := exchange(codeForm(c, redirect, verifier))
	if r.status != 200 || !slices.Equal(e.audienceOf(t, tk5.access), []string{issuer}) {
		t.Fatalf("exchange of a code without resources: %d %s", r.status, r.body)
	}
	r, _ = refresh(tk5.refresh, resA)
	wantError(t, r, 400, "invalid_target")

	// The grant holds every consent's audience, the issuer included.
	grants, _ := e.store.ListGrants(context.Background(), rescind.GrantFilter{ClientID: "webapp", UserID: "alice-id"})
	if len(grants) != 1 || !sameSet(grants[0].Audience, []string{resA, resB, issuer}) {
		t.Fatalf("grants = %+v; want one with audience %v", grants, []string{resA, resB, issuer})
	}
}

// TestLimitedClientNamingNoResource: a client an operator limited to some resources
// (--allowed-resource) that names none gets a token for those, never for the issuer, in the
// code flow (the consent page names them) and on refresh of a grant made before the limit,
// so resource servers on the issuer's audience never accept it (audit 16 #3).
func TestLimitedClientNamingNoResource(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser()
	b.login("alice")
	const redirect = "https://app.example/cb"
	verifier, challenge := pkcePair("r")
	exchange := func(form url.Values) (resp, tokens) { return e.exchange("webapp", appSecret, form) }

	// A grant made before the limit: its code and refresh token name no resource.
	r, before := exchange(codeForm(b.approve(authorizeQuery("webapp", redirect, "read", challenge)).Get("code"), redirect, verifier))
	if r.status != 200 || !slices.Equal(e.audienceOf(t, before.access), []string{issuer}) {
		t.Fatalf("before the limit: %d %s", r.status, r.body)
	}
	limit := []string{resA}
	if _, err := e.store.UpdateClient(ctx, "webapp", rescind.ClientUpdate{AllowedResources: &limit}); err != nil {
		t.Fatal(err)
	}
	e.clients.Invalidate("webapp")

	res, page := b.get("/oauth2/authorize?" + authorizeQuery("webapp", redirect, "read write", challenge))
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "<code>"+resA+"</code>") {
		t.Fatalf("consent page %d does not name the resource the client is limited to:\n%s", res.StatusCode, page)
	}
	r, tk := exchange(codeForm(b.approve(authorizeQuery("webapp", redirect, "read write", challenge)).Get("code"), redirect, verifier))
	if r.status != 200 || !slices.Equal(e.audienceOf(t, tk.access), []string{resA}) {
		t.Fatalf("code flow naming no resource: %d %s; want aud %s", r.status, r.body, resA)
	}
	r, old := exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {before.refresh}})
	if r.status != 200 || !slices.Equal(e.audienceOf(t, old.access), []string{resA}) {
		t.Fatalf("refresh of a grant from before the limit: %d %s; want aud %s", r.status, r.body, resA)
	}
	for _, access := range []string{tk.access, old.access} {
		in := e.do(req{path: "/oauth2/introspect", body: "token=" + url.QueryEscape(access), user: "rs-issuer", pass: rsSecret})
		if in.status != 200 || in.json(t)["active"] != false {
			t.Fatalf("introspection by the issuer's resource server: %d %s; want inactive", in.status, in.body)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestResourceIndicatorsAuthorize: at the authorization endpoint, a malformed resource or one
// the client may not request is sent back as invalid_target; consent once given for resources
// is not asked again for them, and is asked for any other.
func TestResourceIndicatorsAuthorize(t *testing.T) {
	e := newEnv(t)
	e.addClient(t, rescind.Client{ID: "limitedweb", Name: "Limited Web", GrantTypes: []string{rescind.GrantAuthorizationCode},
		Scopes: []string{"read"}, RedirectURIs: []string{"https://limited.example/cb"}, AllowedResources: []string{resA}})
	b := e.browser()
	b.login("alice")
	_, challenge := pkcePair("a")
	query := func(client, redirect string, resources ...string) string {
		q, _ := url.ParseQuery(authorizeQuery(client, redirect, "read", challenge))
		q["resource"] = resources
		return "/oauth2/authorize?" + q.Encode()
	}
	for _, tc := range []struct {
		name, path string
		status     int
		errCode    string
	}{
		{"malformed", query("webapp", "https://app.example/cb", "nope"), http.StatusSeeOther, "invalid_target"},
		{"fragment", query("webapp", "https://app.example/cb", resA+"#f"), http.StatusSeeOther, "invalid_target"},
		{"one of two malformed", query("webapp", "https://app.example/cb", resA, "/rel"), http.StatusSeeOther, "invalid_target"},
		{"not allowed for the client", query("limitedweb", "https://limited.example/cb", resB), http.StatusSeeOther, "invalid_target"},
		{"allowed for the client", query("limitedweb", "https://limited.example/cb", resA), http.StatusOK, ""},
		{"any for an unlimited client", query("webapp", "https://app.example/cb", resD), http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, page := b.get(tc.path)
			if res.StatusCode != tc.status {
				t.Fatalf("%d, want %d: %s", res.StatusCode, tc.status, page)
			}
			if tc.errCode != "" {
				u, _ := url.Parse(res.Header.Get("Location"))
				if q := u.Query(); q.Get("error") != tc.errCode || q.Get("state") != "st-1" || q.Get("iss") != issuer {
					t.Fatalf("redirected with %v, want error=%s", q, tc.errCode)
				}
			}
		})
	}

	// Consent for resA; asked again for resB, not for resA, and not for resA after resB.
	b.approve(strings.TrimPrefix(query("webapp", "https://app.example/cb", resA), "/oauth2/authorize?"))
	consentShown := func(path string) bool {
		res, _ := b.get(path)
		return res.StatusCode == http.StatusOK
	}
	if consentShown(query("webapp", "https://app.example/cb", resA)) {
		t.Fatal("consent asked again for the same resource")
	}
	if !consentShown(query("webapp", "https://app.example/cb", resB)) {
		t.Fatal("consent not asked for another resource")
	}
	if !consentShown(query("webapp", "https://app.example/cb")) {
		t.Fatal("consent for a resource taken as consent for the issuer's tokens")
	}
}

// TestGrantRevocationReachesResourceServers: a grant whose tokens are for a resource is revoked
// as an event that the resource server of that resource receives (and may introspect its
// tokens), while a resource server of another audience receives nothing of it.
func TestGrantRevocationReachesResourceServers(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("g")
	q, _ := url.ParseQuery(authorizeQuery("jwtweb", "https://jwt.example/cb", "read", challenge))
	q["resource"] = []string{resA}
	v := b.approve(q.Encode())
	r, tk := e.exchange("jwtweb", appSecret, codeForm(v.Get("code"), "https://jwt.example/cb", verifier))
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	in := e.do(req{path: "/oauth2/introspect", body: "token=" + tk.access, user: "rs-a", pass: rsSecret}).json(t)
	if in["active"] != true {
		t.Fatalf("the resource server of the token's audience may not introspect it: %v", in)
	}
	grants, _ := e.store.ListGrants(context.Background(), rescind.GrantFilter{ClientID: "jwtweb"})
	if len(grants) != 1 {
		t.Fatalf("grants: %+v", grants)
	}
	if _, _, err := e.committer.RevokeGrants(context.Background(), rescind.GrantFilter{GrantID: grants[0].ID},
		rescind.Revocation{RevokedAt: e.clock(), Actor: "user:alice", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	last := "status:" + statusOf(t, e, tk.access)
	got := e.readEvents(t, "rs-a", last)
	if !got["grant:"+grants[0].ID] || !got[last] {
		t.Fatalf("rs-a received %v; want the grant and its token's status entry", sortedKeys(got))
	}
	// rs-b serves other audiences: its stream carries nothing of this grant. A token of its own
	// audience revoked afterwards marks the end of what it would have received.
	mark := e.do(req{path: "/oauth2/token", body: "grant_type=client_credentials&resource=" + url.QueryEscape(resB), user: "app", pass: appSecret}).json(t)["access_token"].(string)
	e.do(req{path: "/oauth2/revoke", body: "token=" + mark, user: "app", pass: appSecret})
	got = e.readEvents(t, "rs-b", "token:"+jtiOf(t, e, mark))
	if got["grant:"+grants[0].ID] || got[last] {
		t.Fatalf("rs-b received the grant of another audience: %v", sortedKeys(got))
	}
}

func mustHash(t *testing.T, s string) string {
	t.Helper()
	h, err := secret.Hash(s, cheap)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// limitResources has the operator limit client id to resources (client update
// --allowed-resource), as the admin API does: stored, then the client cache told.
func limitResources(t *testing.T, e *env, id string, resources ...string) {
	t.Helper()
	if _, err := e.store.UpdateClient(context.Background(), id, rescind.ClientUpdate{AllowedResources: &resources}); err != nil {
		t.Fatal(err)
	}
	e.clients.Invalidate(id)
}

// TestTokenAudienceWithinGrantAudience: when a code or refresh token of a grant made before the
// operator limited the client (--allowed-resource) issues a token for the allowed resources,
// the grant records that audience in the same transaction, keeping the issuer's it had: a
// token's audience is always within its grant's. So revoking the grant reaches the event stream
// of the resource server the token is for (rs-a), which would otherwise keep accepting it until
// the status list or its cache says otherwise. Bob's grant for resA, revoked after Alice's, marks
// the end of what rs-a is to read. Re-audit 3A #1.
func TestTokenAudienceWithinGrantAudience(t *testing.T) {
	const redirect = "https://app.example/cb"
	for _, tc := range []struct {
		name string
		// limitBeforeExchange: the code is issued before the limit and redeemed after it;
		// otherwise the limit comes between the redemption and a refresh.
		limitBeforeExchange bool
	}{
		{"code issued before the limit, redeemed after", true},
		{"refresh of a grant made before the limit", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			limit := func() { limitResources(t, e, "webapp", resA) }
			alice := e.browser()
			alice.login("alice")
			verifier, challenge := pkcePair("a")
			code := alice.approve(authorizeQuery("webapp", redirect, "read", challenge)).Get("code")
			if tc.limitBeforeExchange {
				limit()
			}
			r, tk := e.exchange("webapp", appSecret, codeForm(code, redirect, verifier))
			if r.status != 200 {
				t.Fatalf("exchange: %d %s", r.status, r.body)
			}
			if !tc.limitBeforeExchange {
				if got := e.audienceOf(t, tk.access); !slices.Equal(got, []string{issuer}) {
					t.Fatalf("before the limit: aud %v, want the issuer", got)
				}
				limit()
				if r, tk = e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}}); r.status != 200 {
					t.Fatalf("refresh: %d %s", r.status, r.body)
				}
			}
			if got := e.audienceOf(t, tk.access); !slices.Equal(got, []string{resA}) {
				t.Fatalf("the token's aud = %v, want [%s]", got, resA)
			}
			grants, err := e.store.ListGrants(ctx, rescind.GrantFilter{ClientID: "webapp", UserID: "alice-id"})
			if err != nil || len(grants) != 1 {
				t.Fatalf("ListGrants = %+v, %v", grants, err)
			}
			if want := []string{issuer, resA}; !sameSet(grants[0].Audience, want) {
				t.Fatalf("the grant's recorded audience = %v, want %v (the issuer's of before, and the token's)", grants[0].Audience, want)
			}

			// Bob's grant names resA from its consent.
			bob := e.browser()
			bob.login("bob")
			bv, bc := pkcePair("b")
			q, _ := url.ParseQuery(authorizeQuery("webapp", redirect, "read", bc))
			q.Set("resource", resA)
			if r, _ := e.exchange("webapp", appSecret, codeForm(bob.approve(q.Encode()).Get("code"), redirect, bv)); r.status != 200 {
				t.Fatalf("bob's exchange: %d %s", r.status, r.body)
			}
			bobs, _ := e.store.ListGrants(ctx, rescind.GrantFilter{ClientID: "webapp", UserID: "bob-id"})
			if len(bobs) != 1 {
				t.Fatalf("bob's grants: %+v", bobs)
			}

			// RFC 7009 on Alice's refresh token revokes her grant; then Bob's.
			if r := e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(tk.refresh), user: "webapp", pass: appSecret}); r.status != 200 {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
			if _, _, err := e.committer.RevokeGrants(ctx, rescind.GrantFilter{GrantID: bobs[0].ID},
				rescind.Revocation{RevokedAt: e.clock()}); err != nil {
				t.Fatal(err)
			}
			got := e.readEvents(t, "rs-a", "grant:"+bobs[0].ID)
			if !got["grant:"+grants[0].ID] {
				t.Fatalf("rs-a, the resource server of the token's audience, did not hear of its grant's revocation; it received %v", sortedKeys(got))
			}
		})
	}
}

// TestIssuanceDoesNotCountAsConsent: Alice consented to webapp for the issuer only; then the
// operator limits webapp to resA. A code redeemed or a refresh after the limit issues a token for
// resA and records resA on the grant (so its revocation reaches rs-a), but that is no consent: a
// new authorization for resA still shows Alice the consent page. Once she approves it, the next
// one skips consent. Re-audit 4 #5.
func TestIssuanceDoesNotCountAsConsent(t *testing.T) {
	const redirect = "https://app.example/cb"
	for _, tc := range []struct {
		name string
		// limitBeforeExchange: the code is issued before the limit and redeemed after it;
		// otherwise the limit comes between the redemption and a refresh.
		limitBeforeExchange bool
	}{
		{"code issued before the limit, redeemed after", true},
		{"refresh after the limit", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			limit := func() { limitResources(t, e, "webapp", resA) }
			alice := e.browser()
			alice.login("alice")
			verifier, challenge := pkcePair("a")
			code := alice.approve(authorizeQuery("webapp", redirect, "read", challenge)).Get("code")
			_, c2 := pkcePair("b")
			again := authorizeQuery("webapp", redirect, "read", c2) // defaults to resA once limited
			if tc.limitBeforeExchange {
				limit()
			}
			r, tk := e.exchange("webapp", appSecret, codeForm(code, redirect, verifier))
			if r.status != 200 {
				t.Fatalf("exchange: %d %s", r.status, r.body)
			}
			if !tc.limitBeforeExchange {
				limit()
				if res, _ := alice.get("/oauth2/authorize?" + again); res.StatusCode != http.StatusOK {
					t.Fatalf("authorization for %s before the refresh: %d; want the consent page", resA, res.StatusCode)
				}
				if r, tk = e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}}); r.status != 200 {
					t.Fatalf("refresh: %d %s", r.status, r.body)
				}
			}
			if got := e.audienceOf(t, tk.access); !slices.Equal(got, []string{resA}) {
				t.Fatalf("the token's aud = %v, want [%s]", got, resA)
			}
			grants, err := e.store.ListGrants(ctx, rescind.GrantFilter{ClientID: "webapp", UserID: "alice-id"})
			if err != nil || len(grants) != 1 || !slices.Contains(grants[0].Audience, resA) {
				t.Fatalf("ListGrants = %+v, %v; want one grant whose audience (for revocation) has %s", grants, err, resA)
			}
			res, page := alice.get("/oauth2/authorize?" + again)
			if res.StatusCode != http.StatusOK || !strings.Contains(page, "<code>"+resA+"</code>") {
				t.Fatalf("authorization for %s after the app was issued a token for it: %d Location=%q; want the consent page naming it",
					resA, res.StatusCode, res.Header.Get("Location"))
			}
			// Her consent for resA is what lets the next authorization skip the page.
			if alice.approve(again).Get("code") == "" {
				t.Fatal("no code after Alice approved")
			}
			res, _ = alice.get("/oauth2/authorize?" + again)
			if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "code=") {
				t.Fatalf("authorization for %s after Alice consented to it: %d; want a code without the consent page", resA, res.StatusCode)
			}
		})
	}
}
