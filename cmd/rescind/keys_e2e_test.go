package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/testenv"
	"github.com/rescind/rescind/resource"
)

// keyList runs `rescind keys list` and returns the keys by kid.
func keyList(t *testing.T, env []string, dataDir string) map[string]admin.KeyInfo {
	t.Helper()
	var list []admin.KeyInfo
	out := cli(t, env, "keys", "list", "--data-dir", dataDir)
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("keys list printed %q: %v", out, err)
	}
	byKid := map[string]admin.KeyInfo{}
	for _, k := range list {
		byKid[k.KID] = k
	}
	return byKid
}

// TestKeysLifecycle drives `rescind keys list|rotate|retire` on the real binary: states, the JSON
// fields, refusing to retire the key in use, and a retirement that holds for opaque tokens and
// JWTs at introspection and in the JWKS, across a restart and another rotation.
func TestKeysLifecycle(t *testing.T) {
	srv, app, rs := jwtSetup(t)
	data := srv.dataDir
	var raw []map[string]any
	json.Unmarshal([]byte(cli(t, nil, "keys", "list", "--data-dir", data)), &raw)
	if len(raw) != 4 {
		t.Fatalf("keys list on a fresh server: %v; want a sealing key and a signing key per algorithm (ES256, EdDSA, RS256)", raw)
	}
	for _, k := range raw {
		for _, field := range []string{"kid", "use", "alg", "created", "state", "activates"} {
			if _, ok := k[field]; !ok {
				t.Fatalf("keys list entry %v lacks %q", k, field)
			}
		}
		if k["state"] != "active" {
			t.Fatalf("a fresh server's key: %v", k)
		}
	}
	var sig, enc admin.KeyInfo
	for _, k := range keyList(t, nil, data) {
		switch {
		case k.Use == "sig" && k.Alg == "ES256":
			sig = k
		case k.Use == "enc":
			enc = k
		}
	}
	if sig.Alg != "ES256" || enc.Alg != "XC20P" {
		t.Fatalf("keys: %+v %+v", sig, enc)
	}

	// The key in use cannot be retired before a rotation: a clear error, nothing changes.
	_, errOut, err := runCLI(nil, "keys", "retire", "--data-dir", data, sig.KID)
	if err == nil || !strings.Contains(errOut, "key_in_use") || !strings.Contains(errOut, "rotate first") {
		t.Fatalf("retiring the only signing key: %v %s", err, errOut)
	}
	if _, errOut, err := runCLI(nil, "keys", "retire", "--data-dir", data, "nosuchkey"); err == nil || !strings.Contains(errOut, "not_found") {
		t.Fatalf("retiring an unknown key: %v %s", err, errOut)
	}

	jwt := jwtToken(t, srv, app)
	listURI := decodeJWTPayload(t, jwt)["status"].(map[string]any)["status_list"].(map[string]any)["uri"].(string)
	listKid := func() string {
		t.Helper()
		res, err := http.Get(listURI)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return jwtKid(t, string(b))
	}
	if listKid() != sig.KID { // rendered and cached by the server
		t.Fatal("status list not signed by the key in use")
	}
	var opaque admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "opaque")), &opaque)
	sealed := srv.token(opaque.ClientID, opaque.ClientSecret)

	var rot admin.RotateKeysResponse
	json.Unmarshal([]byte(cli(t, nil, "keys", "rotate", "--data-dir", data)), &rot)
	ks := keyList(t, nil, data)
	if ks[rot.SigningKeyID].State != "next" || ks[sig.KID].State != "active" || ks[rot.KeyID].State != "active" || ks[enc.KID].State != "retiring" {
		t.Fatalf("states after rotate: %+v", ks)
	}
	if ks[enc.KID].Retires == nil || ks[enc.KID].Retires.Before(time.Now().Add(29*24*time.Hour)) {
		t.Fatalf("a replaced key retires by itself after the longest token lifetime: %+v", ks[enc.KID])
	}
	if !ks[rot.SigningKeyID].Activates.Equal(rot.SigningActivates) {
		t.Fatalf("list and rotate disagree on the activation: %v %v", ks[rot.SigningKeyID].Activates, rot.SigningActivates)
	}

	// Retire the signing key in use: the pending key takes over at once.
	var ret admin.RetireKeyResponse
	json.Unmarshal([]byte(cli(t, nil, "keys", "retire", "--data-dir", data, sig.KID)), &ret)
	if ret.State != "retired" || ret.ActivatedKID != rot.SigningKeyID {
		t.Fatalf("keys retire = %+v", ret)
	}
	cli(t, nil, "keys", "retire", "--data-dir", data, enc.KID)
	if tok := jwtToken(t, srv, app); jwtKid(t, tok) != rot.SigningKeyID {
		t.Fatal("the pending key did not take over at once")
	}
	refused := func(srv *server) {
		t.Helper()
		for name, tok := range map[string]string{"JWT": jwt, "opaque": sealed} {
			if srv.active(rs.ClientID, rs.ClientSecret, tok) {
				t.Fatalf("%s token of a retired key is active", name)
			}
		}
		if kids := jwksKids(t, srv); slices.Contains(kids, sig.KID) || !slices.Contains(kids, rot.SigningKeyID) {
			t.Fatalf("JWKS = %v; want the retired key gone and its replacement there", kids)
		}
	}
	refused(srv)
	if kid := listKid(); kid != rot.SigningKeyID {
		t.Fatalf("status list signed by %s after the retirement; want the replacement (a cached list signed by the retired key would be refused)", kid)
	}
	if !srv.active(opaque.ClientID, opaque.ClientSecret, srv.token(opaque.ClientID, opaque.ClientSecret)) {
		t.Fatal("a new opaque token is inactive")
	}

	// Never back: a restart, another rotation.
	issuer := srv.url
	srv.stop()
	srv = startServer(t, data, nil, "--issuer", issuer)
	refused(srv)
	cli(t, nil, "keys", "rotate", "--now", "--data-dir", data)
	refused(srv)
	ks = keyList(t, nil, data)
	if ks[sig.KID].State != "retired" || ks[sig.KID].Retired == nil || ks[enc.KID].State != "retired" {
		t.Fatalf("retired keys listed as %+v, %+v", ks[sig.KID], ks[enc.KID])
	}
	if strings.Contains(srv.log.String(), jwt) || strings.Contains(srv.log.String(), sealed) {
		t.Fatal("the server log contains a token")
	}
}

// TestClusterKeyRetirement: a key retired through instance A is refused at once by instance B
// (introspection, JWKS), a resource server subscribed to B's event stream drops it, and the SSE
// stream on B carries the "key" event.
func TestClusterKeyRetirement(t *testing.T) {
	env, _ := clusterEnv(t)
	dir := shortTempDir(t)
	a := startServer(t, filepath.Join(dir, "a"), env, "--issuer", "http://auth.localhost:1")
	b := startServer(t, filepath.Join(dir, "b"), env, "--issuer", "http://auth.localhost:1")
	var app, rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", a.dataDir, "--name", "app", "--token-format", "jwt")), &app)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", a.dataDir, "--name", "rs", "--resource-server")), &rs)
	jwt := a.token(app.ClientID, app.ClientSecret)
	oldKid := jwtKid(t, jwt)
	if !b.active(rs.ClientID, rs.ClientSecret, jwt) {
		t.Fatal("A's JWT inactive on B")
	}
	var rot admin.RotateKeysResponse
	json.Unmarshal([]byte(cli(t, nil, "keys", "rotate", "--data-dir", b.dataDir)), &rot)
	within(t, "the key rotated on B published by A", func() bool { return slices.Contains(jwksKids(t, a), rot.SigningKeyID) })

	// A resource server on B's events (the issuer differs from B's URL: a proxy would map it).
	mw, err := resource.New(context.Background(), resource.Config{Issuer: "http://auth.localhost:1",
		ClientID: rs.ClientID, ClientSecret: rs.ClientSecret, Push: true, HTTPClient: rewriteIssuer("http://auth.localhost:1", b.url)})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	for deadline := time.Now().Add(10 * time.Second); mw.StalenessBound() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("push never live")
		}
	}
	if _, err := mw.Verify(context.Background(), jwt); err != nil {
		t.Fatalf("middleware before retirement: %v", err)
	}
	events := openEvents(t, b, rs)

	var ret admin.RetireKeyResponse
	json.Unmarshal([]byte(cli(t, nil, "keys", "retire", "--data-dir", a.dataDir, oldKid)), &ret)
	if ret.ActivatedKID != rot.SigningKeyID {
		t.Fatalf("retire = %+v", ret)
	}
	within(t, "B refuses the retired key's JWT", func() bool { return !b.active(rs.ClientID, rs.ClientSecret, jwt) })
	within(t, "B's JWKS drops the retired key", func() bool { return !slices.Contains(jwksKids(t, b), oldKid) })
	within(t, "the middleware on B's events refuses it", func() bool {
		_, err := mw.Verify(context.Background(), jwt)
		return err != nil
	})
	select {
	case e := <-events:
		if e["type"] != "key" || e["kid"] != oldKid {
			t.Fatalf("event on B: %v; want the key retirement", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no key event on B's stream")
	}
	if tok := b.token(app.ClientID, app.ClientSecret); jwtKid(t, tok) != rot.SigningKeyID {
		t.Fatal("B does not sign with the replacement")
	}
}

// rewriteIssuer returns an HTTP client that sends requests for issuer to target instead: a
// stand-in for the load balancer in front of instances that share one issuer.
func rewriteIssuer(issuer, target string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		if u := r.URL.String(); strings.HasPrefix(u, issuer) {
			r = r.Clone(r.Context())
			r.URL, _ = r.URL.Parse(target + strings.TrimPrefix(u, issuer))
			r.Host = ""
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// compromisedKeyProcedure returns the README's "compromised key, step by step" block, as the
// shell runs it: `go run ./cmd/rescind` is the binary under test.
func compromisedKeyProcedure(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range parseReadme(string(readme)) {
		if b.runnable() && strings.Contains(b.body, `keys retire "$OLD_KID"`) {
			return strings.ReplaceAll(b.body, "go run ./cmd/rescind", binary)
		}
	}
	t.Fatal(`the README has no runnable block that runs keys retire "$OLD_KID"`)
	return ""
}

// TestReadmeCompromisedKeyProcedure follows the README's procedure for a compromised key from
// every state the keys can be in when the operator starts: the key retired is the one that was in
// force (the compromised one here), never a key rotated in and still waiting, and nothing else is
// retired. The procedure as first written picked the newest "retiring" key after `rotate --now`,
// which was the never-used pending key whenever one was waiting.
func TestReadmeCompromisedKeyProcedure(t *testing.T) {
	if _, err := exec.LookPath("jq"); err != nil {
		testenv.Unavailable(t, "jq", "jq is not installed")
	}
	procedure := compromisedKeyProcedure(t)
	for _, tc := range []struct {
		name       string
		before     [][]string // what the operator had done before
		skipRotate bool       // the operator skips step 2 (allowed: a key is next)
	}{
		{"fresh server", nil, false},
		{"a rotation pending (next key)", [][]string{{"keys", "rotate"}}, false},
		{"a rotation pending, step 2 skipped", [][]string{{"keys", "rotate"}}, true},
		{"after an earlier --now, a rotation pending", [][]string{{"keys", "rotate", "--now"}, {"keys", "rotate"}}, false},
		{"two rotations pending", [][]string{{"keys", "rotate"}, {"keys", "rotate"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			procedure := procedure
			if tc.skipRotate {
				var kept []string
				for _, line := range strings.Split(procedure, "\n") {
					if !strings.Contains(line, "keys rotate --now") {
						kept = append(kept, line)
					}
				}
				procedure = strings.Join(kept, "\n")
			}
			dir := shortTempDir(t)
			data := filepath.Join(dir, "rescind-data")
			startServer(t, data, nil)
			for _, args := range tc.before {
				cli(t, nil, append(args, "--data-dir", data)...)
			}
			compromised := ""
			before := keyList(t, nil, data)
			for _, k := range before {
				if k.Use == "sig" && k.Alg == "ES256" && k.State == "active" {
					compromised = k.KID
				}
			}
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", procedure)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the README's procedure failed: %v\n%s", err, out)
			}
			after := keyList(t, nil, data)
			active := map[string]int{} // by algorithm: one chain each
			for kid, k := range after {
				switch {
				case kid == compromised && k.State != "retired":
					t.Errorf("the compromised key %s is %q after the procedure; want retired", kid, k.State)
				case kid != compromised && k.State == "retired":
					t.Errorf("key %s (%s, %q before) was retired instead", kid, k.Use, before[kid].State)
				case k.State == "active" && k.Use == "sig":
					active[k.Alg]++
				case tc.skipRotate && k.Alg != "ES256" && k.State == "next":
					// No emergency rotation: the other algorithms' pending keys stay pending.
				case before[kid].State == "next" && k.State != "superseded":
					t.Errorf("key %s, next before and overtaken by the emergency rotation, is %q; want superseded", kid, k.State)
				}
			}
			if len(active) != 3 || active["ES256"] != 1 || active["EdDSA"] != 1 || active["RS256"] != 1 {
				t.Errorf("active signing keys by algorithm after the procedure: %v; want one each: %+v", active, after)
			}
		})
	}
}

// TestRetiredSealingKeyAtResourceServer: retiring a sealing key makes a resource server using
// the resource package refuse the opaque tokens it sealed as the key event arrives, although it
// had cached a positive introspection answer for them (for ten minutes, here).
func TestRetiredSealingKeyAtResourceServer(t *testing.T) {
	srv, _, _ := jwtSetup(t)
	data := srv.dataDir
	var app, rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "opaque")), &app)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "rs-all", "--resource-server")), &rs)
	sealed := srv.token(app.ClientID, app.ClientSecret)
	var enc admin.KeyInfo
	for _, k := range keyList(t, nil, data) {
		if k.Use == "enc" {
			enc = k
		}
	}
	mw, err := resource.New(context.Background(), resource.Config{Issuer: srv.url, ClientID: rs.ClientID, ClientSecret: rs.ClientSecret,
		Push: true, IntrospectionCacheTTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	waitPushConnected(t, mw)
	if _, err := mw.Verify(context.Background(), sealed); err != nil {
		t.Fatalf("before the retirement: %v", err)
	}
	cli(t, nil, "keys", "rotate", "--data-dir", data)
	cli(t, nil, "keys", "retire", "--data-dir", data, enc.KID)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := mw.Verify(context.Background(), sealed); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the opaque token of the retired key %s is still accepted (a cached introspection answer)", enc.KID)
		}
	}
	if srv.active(rs.ClientID, rs.ClientSecret, sealed) {
		t.Fatal("the server says the token of the retired key is active")
	}
}

// TestKeysRotateWaitsOutClockSkewAndPollInterval: on a server run with a larger --clock-skew and
// --poll-interval, `keys rotate` makes the new signing keys sign only after the JWKS max-age plus
// both (an instance whose clock is ahead by the skew, or that learns of the keys by its poll,
// must not sign with them while a JWKS without them can still be cached), as `keys list` shows.
func TestKeysRotateWaitsOutClockSkewAndPollInterval(t *testing.T) {
	data := t.TempDir()
	startServer(t, data, nil, "--clock-skew", "10m", "--poll-interval", "2m")
	want := 5*time.Minute + 10*time.Minute + 2*time.Minute + 10*time.Second // max-age + skew + poll + margin
	before := time.Now()
	var rot admin.RotateKeysResponse
	out := cli(t, nil, "keys", "rotate", "--data-dir", data)
	if err := json.Unmarshal([]byte(out), &rot); err != nil {
		t.Fatalf("keys rotate printed %q: %v", out, err)
	}
	after := time.Now()
	if rot.SigningActivates.Before(before.Add(want).Truncate(time.Second)) || rot.SigningActivates.After(after.Add(want)) {
		t.Fatalf("keys rotate: signing_activates %v, %v after the rotation; want %v (JWKS max-age + --clock-skew + --poll-interval + 10s)",
			rot.SigningActivates, rot.SigningActivates.Sub(before), want)
	}
	list := keyList(t, nil, data)
	if len(rot.SigningKeys) != 3 {
		t.Fatalf("keys rotate: signing_keys %v; want one per algorithm", rot.SigningKeys)
	}
	for _, k := range rot.SigningKeys {
		if got := list[k.KID]; got.State != "next" || !got.Activates.Equal(rot.SigningActivates) {
			t.Errorf("keys list: %s key %s is %s, activates %v; want next, activating %v", k.Alg, k.KID, got.State, got.Activates, rot.SigningActivates)
		}
	}
}
