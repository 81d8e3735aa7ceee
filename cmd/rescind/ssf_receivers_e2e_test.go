package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/rescind/rescind/admin"
)

// Who may be a Shared Signals receiver (audit 19, findings 1, 3 and 9): only a client an
// operator registered with ssf.manage or ssf.read, acting as itself (client credentials), with
// a token for this server, and only while it still holds the scope.

// tokenReceiver is a receiver calling with the given token.
func tokenReceiver(t *testing.T, srv *server, clientID, token string) *receiver {
	t.Helper()
	r := &receiver{t: t, base: srv.url, clientID: clientID, token: token}
	res, err := http.Get(srv.url + "/.well-known/ssf-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	json.NewDecoder(res.Body).Decode(&r.meta)
	return r
}

// assertRefused checks that creating an ALL stream with r's token is refused with status and
// an error description saying says.
func assertRefused(t *testing.T, r *receiver, status int, says string) {
	t.Helper()
	code, out := r.call("POST", r.endpoint("configuration_endpoint"), map[string]any{"delivery": map[string]any{"method": pollMethod},
		"default_subjects": "ALL"})
	m, _ := out.(map[string]any)
	if code != status || m == nil || !strings.Contains(m["error_description"].(string), says) {
		t.Fatalf("create an ALL stream: %d %v; want %d saying %q", code, out, status, says)
	}
}

// With open registration, a person who registers a public client and grants it ssf.manage on
// her own account gets a token the SSF endpoints refuse: it is hers, not a receiver's.
func TestSharedSignalsPersonTokenRefused(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--registration", "open")
	createUser(t, data, "mallory", "mallory-password")
	body, _ := json.Marshal(map[string]any{"redirect_uris": []string{"http://127.0.0.1:9/cb"}, "grant_types": []string{"authorization_code"},
		"token_endpoint_auth_method": "none", "client_name": "mallory app"})
	res, err := http.Post(srv.url+"/oauth2/register", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		ClientID string `json:"client_id"`
	}
	json.NewDecoder(res.Body).Decode(&reg)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d", res.StatusCode)
	}
	cfg := oauth2.Config{ClientID: reg.ClientID, RedirectURL: "http://127.0.0.1:9/cb", Scopes: []string{"ssf.manage"},
		Endpoint: oauth2.Endpoint{AuthURL: srv.url + "/oauth2/authorize", TokenURL: srv.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	q := newPerson(t).authorize(srv.url, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "mallory", "mallory-password")
	tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v (%v)", err, q)
	}
	assertRefused(t, tokenReceiver(t, srv, reg.ClientID, tok.AccessToken), http.StatusUnauthorized, "client credentials")
}

// With --registration token, a client registered with an initial access token and naming
// ssf.manage gets a client-credentials token the SSF endpoints refuse: it registered itself.
func TestSharedSignalsSelfRegisteredRefused(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	// --scopes and the initial access token's --scope offer ssf.manage to self-registered
	// clients: the token endpoint grants it, the SSF endpoints must still refuse.
	srv := startServer(t, data, nil, "--registration", "token", "--scopes", "read ssf.manage")
	fields := strings.Fields(cli(t, nil, "registration-token", "create", "--data-dir", data, "--expires", "1h", "--scope", "ssf.manage"))
	iat := fields[len(fields)-1]
	body, _ := json.Marshal(map[string]any{"grant_types": []string{"client_credentials"}, "scope": "ssf.manage",
		"token_endpoint_auth_method": "client_secret_basic", "client_name": "some app"})
	req, _ := http.NewRequest("POST", srv.url+"/oauth2/register", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+iat)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var reg struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	json.Unmarshal(rb, &reg)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %s", res.StatusCode, rb)
	}
	code, tb := srv.post("/oauth2/token", reg.ClientID, reg.ClientSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"ssf.manage"}})
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(tb, &tr)
	if code != http.StatusOK {
		t.Fatalf("token: %d %s", code, tb)
	}
	assertRefused(t, tokenReceiver(t, srv, reg.ClientID, tr.AccessToken), http.StatusForbidden, "self-registered")
}

// A receiver's client-credentials token issued for another resource (RFC 8707) is refused: the
// resource could replay it. The same client's token for the issuer is accepted.
func TestSharedSignalsAudience(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server", "--resource", "https://api.example")
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "rx", "--scope", "ssf.manage")), &c)
	tokenFor := func(form url.Values) string {
		form.Set("grant_type", "client_credentials")
		form.Set("scope", "ssf.manage")
		code, tb := srv.post("/oauth2/token", c.ClientID, c.ClientSecret, form)
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal(tb, &tr)
		if code != http.StatusOK {
			t.Fatalf("token %v: %d %s", form, code, tb)
		}
		return tr.AccessToken
	}
	assertRefused(t, tokenReceiver(t, srv, c.ClientID, tokenFor(url.Values{"resource": {"https://api.example"}})), http.StatusUnauthorized, "audience")
	tokenReceiver(t, srv, c.ClientID, tokenFor(url.Values{})).createStream(map[string]any{"delivery": map[string]any{"method": pollMethod}})
}

// A receiver whose ssf.manage and ssf.read are taken away is refused at once with the token it
// already holds, and its push stream delivers nothing more.
func TestSharedSignalsScopeRemoved(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--ssf-allow-loopback-push", "--outbox-poll-interval", "100ms")
	r := newReceiver(t, srv, "receiver")
	createUser(t, data, "bob", "bob-password")
	push := newPushReceiver(t, r, "")
	r.createStream(map[string]any{"delivery": map[string]any{"method": pushMethod, "endpoint_url": push.url()}, "default_subjects": "ALL"})
	cliInput(t, "new-bob-password\n", "user", "set-password", "--data-dir", data, "bob", "--password-stdin")
	push.wait("credential-change while the receiver holds the scope", 30*time.Second, isType(credentialChange))

	cli(t, nil, "client", "update", "--data-dir", data, r.clientID, "--scope", "read")
	if code, out := r.call("GET", r.endpoint("configuration_endpoint"), nil); code != http.StatusForbidden {
		t.Fatalf("read streams with the old token after the scope was removed: %d %v; want 403", code, out)
	}
	cliInput(t, "third-bob-password\n", "user", "set-password", "--data-dir", data, "bob", "--password-stdin")
	time.Sleep(2 * time.Second) // the outbox polls every 100 ms: ample time for a push
	push.mu.Lock()
	n := len(push.sets)
	push.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d SETs pushed; want only the one before the scope was removed", n)
	}
}

// A poll stream that becomes a push stream pushes the events it held (audit 19, finding 4).
func TestSharedSignalsPollToPush(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--ssf-allow-loopback-push", "--outbox-poll-interval", "100ms")
	r := newReceiver(t, srv, "receiver")
	createUser(t, data, "alice", "alice-password")
	poll := r.createStream(map[string]any{"delivery": map[string]any{"method": pollMethod}, "default_subjects": "ALL"})
	// A second poll stream is the probe: one fan-out appends the event to both streams in one
	// transaction, so once the probe has it, the first stream holds it too.
	probe := r.createStream(map[string]any{"delivery": map[string]any{"method": pollMethod}, "default_subjects": "ALL"})
	probeURL := probe["delivery"].(map[string]any)["endpoint_url"].(string)
	cliInput(t, "new-alice-password\n", "user", "set-password", "--data-dir", data, "alice", "--password-stdin")
	if sets, _ := r.poll(probeURL, map[string]any{}); len(sets) == 0 { // a long poll: at most 25 s
		t.Fatal("the event never reached the probe stream")
	}
	push := newPushReceiver(t, r, "")
	code, out := r.call("PATCH", r.endpoint("configuration_endpoint"), map[string]any{"stream_id": poll["stream_id"],
		"delivery": map[string]any{"method": pushMethod, "endpoint_url": push.url()}})
	if code != http.StatusOK {
		t.Fatalf("PATCH to push: %d %v", code, out)
	}
	push.wait("the credential-change held while polled", 30*time.Second, isType(credentialChange))
}
