package oauth_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/metrics"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

// streamEnv is a server whose committer wakes the event streams, as `rescind serve` wires it,
// with clients c0..c(n-1) (secret "s") for subscribers and "app" for tokens.
type streamEnv struct {
	url   string
	store *sqlite.Store
	srv   *oauth.Server
}

func newStreamEnv(tb testing.TB, clients int) *streamEnv {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "db"))
	if err != nil {
		tb.Fatal(err)
	}
	hash, _ := secret.Hash("s", cheap)
	cc := []string{rescind.GrantClientCredentials}
	for i := range clients {
		st.CreateClient(ctx, rescind.Client{ID: fmt.Sprint("c", i), Name: "rs", SecretHash: hash, GrantTypes: cc})
	}
	st.CreateClient(ctx, rescind.Client{ID: "app", Name: "app", SecretHash: hash, GrantTypes: cc, Scopes: []string{"read"}})
	k, _ := token.NewSealKey()
	kr, _ := token.NewKeyring(k)
	state := revocation.NewState()
	reg, _ := clientreg.New(clientreg.Config{Store: st})
	met := metrics.New(prometheus.NewRegistry(), func() float64 { return 0 })
	var srv *oauth.Server
	com := revocation.NewCommitter(st, state, func(int) { srv.NotifyRevocations() })
	srv, err = oauth.New(oauth.Config{Issuer: "https://as.example", Clients: reg, Keys: kr, Revoked: state, Committer: com,
		Metrics: met, Store: st})
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	tb.Cleanup(func() {
		srv.CloseStreams()
		hs.Close()
		com.Close()
		st.Close()
	})
	return &streamEnv{url: hs.URL, store: st, srv: srv}
}

func (e *streamEnv) post(tb testing.TB, path, client string, form url.Values) *http.Response {
	tb.Helper()
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, "s")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

func (e *streamEnv) token(tb testing.TB) string {
	tb.Helper()
	res := e.post(tb, "/oauth2/token", "app", url.Values{"grant_type": {"client_credentials"}})
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	_, after, _ := strings.Cut(string(b), `"access_token":"`)
	tok, _, _ := strings.Cut(after, `"`)
	if res.StatusCode != 200 || tok == "" {
		tb.Fatalf("token: %d %s", res.StatusCode, b)
	}
	return tok
}

func (e *streamEnv) revoke(tb testing.TB, tok string) {
	tb.Helper()
	res := e.post(tb, "/oauth2/revoke", "app", url.Values{"token": {tok}})
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		tb.Fatalf("revoke: %d", res.StatusCode)
	}
}

// open opens an event stream as client; the caller closes the body.
func (e *streamEnv) open(tb testing.TB, client string) *http.Response {
	tb.Helper()
	req, _ := http.NewRequest("GET", e.url+"/oauth2/revocations/events", nil)
	req.SetBasicAuth(client, "s")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// TestEventStreamLimit: a client holds at most 8 streams (on this instance, as the answer says);
// the 9th gets 429 with Retry-After in RFC 6749 §5.2 JSON; another client is not affected;
// closing one frees a place.
func TestEventStreamLimit(t *testing.T) {
	e := newStreamEnv(t, 2)
	var open []*http.Response
	for i := range oauth.MaxStreamsPerClient {
		res := e.open(t, "c0")
		if res.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i+1, res.StatusCode)
		}
		bufio.NewReader(res.Body).ReadString('\n') // the stream is established
		open = append(open, res)
	}
	defer func() {
		for _, res := range open {
			res.Body.Close()
		}
	}()
	res := e.open(t, "c0")
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	r := resp{status: res.StatusCode, header: res.Header, body: b}
	wantError(t, r, http.StatusTooManyRequests, "slow_down")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	// The bound is per instance (each instance serves at most 8 of a client's streams): the
	// answer says so, so that a client spread over instances is not misled.
	if d, _ := r.json(t)["error_description"].(string); !strings.Contains(d, "on this instance") {
		t.Fatalf("error_description %q does not say the bound is per instance", d)
	}
	if other := e.open(t, "c1"); other.StatusCode != 200 {
		t.Fatalf("another client's stream: %d", other.StatusCode)
	} else {
		other.Body.Close()
	}
	open[0].Body.Close()
	open = open[1:]
	deadline := time.Now().Add(10 * time.Second)
	for { // the server notices the closed stream at its next write or keep-alive
		res := e.open(t, "c0")
		if res.StatusCode == 200 {
			open = append(open, res)
			break
		}
		res.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("a stream closed by the client still counts: %d", res.StatusCode)
		}
		e.revoke(t, e.token(t)) // an event makes every stream write
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventStreamMaxAge: a stream ends after its maximum age even if its receiver never reads
// (the keep-alives alone would take hours to fill the socket's buffers, holding one of the
// client's places all along); the receiver reconnects with Last-Event-ID and misses nothing.
func TestEventStreamMaxAge(t *testing.T) {
	defer oauth.SetStreamMaxAge(300 * time.Millisecond)()
	e := newStreamEnv(t, 0)
	res := e.open(t, "app")
	defer res.Body.Close()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var from int64 = -1
	last := ""
	timeout := time.After(5 * time.Second)
	for ended := false; !ended; {
		select {
		case line, ok := <-lines:
			switch {
			case !ok:
				ended = true
			case strings.HasPrefix(line, ": rescind revocation events from "):
				fmt.Sscanf(line, ": rescind revocation events from %d", &from)
			case line != "":
				last = line
			}
		case <-timeout:
			t.Fatal("the stream did not end within 5 s (its maximum age is 300 ms)")
		}
	}
	if from < 0 || !strings.Contains(last, "reconnect with Last-Event-ID") {
		t.Fatalf("stream began from %d, ended with %q; want a start and the closing comment", from, last)
	}
	tok := e.token(t)
	e.revoke(t, tok) // while the receiver is away
	req, _ := http.NewRequest("GET", e.url+"/oauth2/revocations/events", nil)
	req.SetBasicAuth("app", "s")
	req.Header.Set("Last-Event-ID", fmt.Sprint(from))
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Body.Close()
	br := bufio.NewReader(again.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("the revocation made while the receiver was away never came: %v", err)
		}
		if strings.HasPrefix(line, "data:") {
			if !strings.Contains(line, `"type":"token"`) {
				t.Fatalf("event %s; want the token's revocation", line)
			}
			return
		}
	}
}
