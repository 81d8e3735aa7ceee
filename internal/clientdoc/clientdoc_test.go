package clientdoc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/redirect"
)

// docServer is an https server on loopback that serves what its handler says, and counts the
// requests it gets.
type docServer struct {
	*httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	handler http.HandlerFunc
}

func newDocServer(t *testing.T) *docServer {
	d := &docServer{}
	d.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		d.mu.Lock()
		h := d.handler
		d.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *docServer) serve(h http.HandlerFunc) {
	d.mu.Lock()
	d.handler = h
	d.mu.Unlock()
}

// json serves body as application/json with the given Cache-Control.
func jsonDoc(body, cacheControl string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		fmt.Fprint(w, body)
	}
}

func (d *docServer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(d.Certificate())
	return p
}

// validDoc is a document for the client id.
func validDoc(id string) string {
	return `{"client_id":"` + id + `","client_name":"Agent","redirect_uris":["http://127.0.0.1:33418/callback","https://agent.example/cb"],` +
		`"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"token_endpoint_auth_method":"none",` +
		`"scope":"read write","logo_uri":"https://agent.example/logo.png","unknown_member":{"x":1}}`
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newResolver(d *docServer, clk *clock, change func(*Config)) *Resolver {
	cfg := Config{AllowLoopback: true, RootCAs: d.pool(), Now: clk.Now}
	if change != nil {
		change(&cfg)
	}
	return New(cfg)
}

// TestResolve: a valid document becomes a public client registered by metadata document, with
// its redirect URIs, grant types, scopes and name; each rule of the draft and of registration
// refuses the document that breaks it, with a reason and no client.
func TestResolve(t *testing.T) {
	d := newDocServer(t)
	clk := &clock{now: time.Unix(1_900_000_000, 0)}
	id := d.URL + "/client.json"
	r := newResolver(d, clk, nil)
	d.serve(jsonDoc(validDoc(id), ""))
	c, err := r.Resolve(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != id || !c.Public || c.Registration != rescind.RegistrationMetadataDocument || c.Name != "Agent" || c.SecretHash != "" ||
		!slices.Equal(c.RedirectURIs, []string{"http://127.0.0.1:33418/callback", "https://agent.example/cb"}) ||
		!slices.Equal(c.GrantTypes, []string{"authorization_code", "refresh_token"}) || !slices.Equal(c.Scopes, []string{"read", "write"}) {
		t.Fatalf("client = %+v", c)
	}

	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		reason  string // in the error
	}{
		{"client_id of another URL", jsonDoc(strings.Replace(validDoc(id), "/client.json", "/other.json", 1), ""), "client_id"},
		{"client_id with a trailing slash", jsonDoc(strings.Replace(validDoc(id), "/client.json", "/client.json/", 1), ""), "client_id"},
		{"no client_id", jsonDoc(`{"redirect_uris":["https://a.example/cb"]}`, ""), "client_id"},
		{"a client secret", jsonDoc(strings.Replace(validDoc(id), `"scope"`, `"client_secret":"s","scope"`, 1), ""), "secret"},
		{"a secret expiry", jsonDoc(strings.Replace(validDoc(id), `"scope"`, `"client_secret_expires_at":0,"scope"`, 1), ""), "secret"},
		{"client_secret_basic", jsonDoc(strings.Replace(validDoc(id), `"token_endpoint_auth_method":"none"`, `"token_endpoint_auth_method":"client_secret_basic"`, 1), ""), "none"},
		{"private_key_jwt", jsonDoc(strings.Replace(validDoc(id), `"token_endpoint_auth_method":"none"`, `"token_endpoint_auth_method":"private_key_jwt"`, 1), ""), "none"},
		{"no redirect URIs", jsonDoc(`{"client_id":"`+id+`"}`, ""), "redirect_uris"},
		{"a name with a right-to-left override", jsonDoc(strings.Replace(validDoc(id), `"Agent"`, `"Rescind \u202eppA nimdA\u202c"`, 1), ""), "client_name"},
		{"a name with a zero-width space", jsonDoc(strings.Replace(validDoc(id), `"Agent"`, `"Ag\u200bent"`, 1), ""), "client_name"},
		{"a javascript: redirect URI", jsonDoc(`{"client_id":"`+id+`","redirect_uris":["javascript:alert(1)"]}`, ""), "javascript"},
		{"a redirect URI with a fragment", jsonDoc(`{"client_id":"`+id+`","redirect_uris":["https://a.example/cb#x"]}`, ""), "fragment"},
		{"client_credentials", jsonDoc(`{"client_id":"`+id+`","redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}`, ""), "grant_types"},
		{"token response type", jsonDoc(`{"client_id":"`+id+`","redirect_uris":["https://a.example/cb"],"response_types":["token"]}`, ""), "response_types"},
		{"redirect_uris not an array", jsonDoc(`{"client_id":"`+id+`","redirect_uris":"https://a.example/cb"}`, ""), "redirect_uris"},
		{"a malformed scope", jsonDoc(`{"client_id":"`+id+`","redirect_uris":["https://a.example/cb"],"scope":"a\\\\b"}`, ""), "scope"},
		{"a JSON array", jsonDoc(`[`+validDoc(id)+`]`, ""), "JSON object"},
		{"not JSON", jsonDoc(`client_id=`+id, ""), "JSON object"},
		{"not UTF-8", jsonDoc(strings.Replace(validDoc(id), "Agent", "Ag\xffent", 1), ""), "UTF-8"},
		{"two JSON objects", jsonDoc(validDoc(id)+validDoc(id), ""), "JSON object"},
		{"served as text/html", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, validDoc(id))
		}, "application/json"},
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "HTTP 404"},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, "HTTP 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk.advance(time.Hour) // past every cached answer
			d.serve(tc.handler)
			c, err := r.Resolve(context.Background(), id)
			var de *Error
			if !errors.As(err, &de) || !strings.Contains(de.Reason, tc.reason) || c.ID != "" {
				t.Fatalf("Resolve = %+v, %v; want an *Error saying %q", c, err, tc.reason)
			}
		})
	}
}

// TestClientIDForm: which client_id values are metadata document URLs (§3); private and
// loopback addresses are refused as data, before anything is dialled.
func TestClientIDForm(t *testing.T) {
	strict := New(Config{})
	dev := New(Config{AllowLoopback: true})
	for _, tc := range []struct {
		id          string
		strict, dev bool
	}{
		{"https://agent.example/client.json", true, true},
		{"https://agent.example:8443/oauth/client?v=1", true, true},
		// One spelling per URL (audit 16, unverified point): a deleted client's URL stays refused
		// only as written, so other spellings of it are not client ids.
		{"https://Agent.example/client.json", false, false},
		{"HTTPS://agent.example/client.json", false, false},
		{"https://agent.example:443/client.json", false, false},
		{"https://agent.example./client.json", false, false},
		{"https://agent.example/client.json?", false, false},
		{"https://agent.example/%63lient.json", false, false},
		{"https://agent.example/client%20x.json", true, true}, // an escape that is needed
		{"https://[2606:4700::1]/c.json", true, true},
		{"https://[2606:4700::1]:443/c.json", false, false},
		// Other spellings of a port or an address (re-audit 3A #5): leading zeros, an empty
		// port, a non-canonical IPv6 text form, a numeric host that is not a dotted quad (read
		// as an IPv4 address by browsers and other URL parsers).
		{"https://agent.example:0443/client.json", false, false},
		{"https://agent.example:00443/client.json", false, false},
		{"https://agent.example:08443/client.json", false, false},
		{"https://agent.example:/client.json", false, false},
		{"https://agent.example:0/client.json", false, false},
		{"https://agent.example:65536/client.json", false, false},
		{"https://agent.example:65535/client.json", true, true},
		{"https://[2606:4700:0::1]/c.json", false, false},
		{"https://[2606:4700:0:0:0:0:0:1]/c.json", false, false},
		{"https://[2606:4700::0001]/c.json", false, false},
		{"https://[2606:4700::A]/c.json", false, false},
		{"https://[2606:4700::a]/c.json", true, true},
		{"https://134744072/c.json", false, false},
		{"https://0x8080808/c.json", false, false},
		{"https://008.008.008.008/c.json", false, false},
		{"https://8.8.8.010/c.json", false, false},
		{"https://8.8.2056/c.json", false, false},
		{"https://agent.123/c.json", false, false},
		{"https://agent.0x1f/c.json", false, false},
		{"https://123.agent.example/c.json", true, true},
		{"https://0x.agent.example/c.json", true, true},
		{"http://127.1:8080/c.json", false, false},
		{"http://localhost.:8080/c.json", false, false},
		{"https://agent.example", false, false},  // no path
		{"https://agent.example/", false, false}, // no path
		{"http://agent.example/client.json", false, false},
		{"https://agent.example/a/../client.json", false, false},
		{"https://agent.example/./client.json", false, false},
		{"https://agent.example/client.json#frag", false, false},
		{"https://user:pw@agent.example/client.json", false, false},
		{"https://agent.example/cl ient.json", false, false},
		{"agent.example/client.json", false, false},
		{"https:///client.json", false, false},
		{"https://10.0.0.1/client.json", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://192.168.1.1/c.json", false, false},
		{"https://[fd00::1]/c.json", false, false},
		{"https://[::ffff:10.0.0.1]/c.json", false, false},
		{"https://0.0.0.0/c.json", false, false},
		{"https://127.0.0.1/c.json", false, true},
		{"https://[::1]/c.json", false, true},
		{"http://127.0.0.1:8080/c.json", false, true}, // plain http on loopback: development only
		{"http://localhost:8080/c.json", false, true},
		{"https://8.8.8.8/c.json", true, true},
		{"urn:example:client", false, false},
		{"client-id", false, false},
	} {
		if got := strict.IsClientID(tc.id); got != tc.strict {
			t.Errorf("IsClientID(%q) = %v, want %v", tc.id, got, tc.strict)
		}
		if got := dev.IsClientID(tc.id); got != tc.dev {
			t.Errorf("with AllowLoopback, IsClientID(%q) = %v, want %v", tc.id, got, tc.dev)
		}
	}
	// Resolve refuses them the same way, without a request.
	if _, err := strict.Resolve(context.Background(), "https://10.0.0.1/client.json"); err == nil {
		t.Fatal("a private address resolved")
	}
}

// TestSSRF: without AllowLoopback, a host name that resolves to loopback is refused when it is
// dialled (the document server sees no request); a redirect, even to a private address or to
// another server, is never followed; an oversized or slow document is refused within bounds.
func TestSSRF(t *testing.T) {
	d := newDocServer(t)
	clk := &clock{now: time.Unix(1_900_000_000, 0)}
	port := d.URL[strings.LastIndex(d.URL, ":")+1:]

	t.Run("a name resolving to loopback", func(t *testing.T) {
		id := "https://localhost:" + port + "/client.json"
		d.serve(jsonDoc(validDoc(id), ""))
		r := New(Config{RootCAs: d.pool(), Now: clk.Now})
		_, err := r.Resolve(context.Background(), id)
		var de *Error
		if !errors.As(err, &de) || !strings.Contains(de.Reason, "public") {
			t.Fatalf("Resolve = %v; want refused as not public", err)
		}
		if n := d.hits.Load(); n != 0 {
			t.Fatalf("the loopback server got %d requests", n)
		}
		// With loopback allowed (development), a document there is fetched (by address: the
		// test certificate does not name localhost).
		byAddr := d.URL + "/client.json"
		d.serve(jsonDoc(validDoc(byAddr), ""))
		if _, err := New(Config{RootCAs: d.pool(), Now: clk.Now, AllowLoopback: true}).Resolve(context.Background(), byAddr); err != nil {
			t.Fatalf("with AllowLoopback: %v", err)
		}
	})

	other := newDocServer(t)
	other.serve(jsonDoc(`{}`, ""))
	for _, target := range []string{"https://10.0.0.7/client.json", "http://169.254.169.254/latest/meta-data/", other.URL + "/client.json"} {
		t.Run("redirect to "+target, func(t *testing.T) {
			clk.advance(time.Hour)
			id := d.URL + "/moved.json"
			d.serve(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target, http.StatusFound) })
			_, err := newResolver(d, clk, nil).Resolve(context.Background(), id)
			var de *Error
			if !errors.As(err, &de) || !strings.Contains(de.Reason, "redirect") {
				t.Fatalf("Resolve = %v; want refused as redirected", err)
			}
			if n := other.hits.Load(); n != 0 {
				t.Fatalf("the redirect's target got %d requests", n)
			}
		})
	}

	t.Run("oversized", func(t *testing.T) {
		id := d.URL + "/big.json"
		d.serve(jsonDoc(strings.Replace(validDoc(id), `"scope"`, `"padding":"`+strings.Repeat("x", 6000)+`","scope"`, 1), ""))
		_, err := newResolver(d, clk, nil).Resolve(context.Background(), id)
		var de *Error
		if !errors.As(err, &de) || !strings.Contains(de.Reason, "larger than 5120 bytes") {
			t.Fatalf("Resolve = %v; want refused as too large", err)
		}
		// Within a larger bound it is fine.
		if _, err := newResolver(d, clk, func(c *Config) { c.MaxBytes = 16 << 10 }).Resolve(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	})

	release := make(chan struct{})
	defer close(release)
	for name, h := range map[string]http.HandlerFunc{
		"slow to answer": func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		},
		"slow body": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			fmt.Fprint(w, `{"client_id":`)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			id := d.URL + "/slow-" + strings.ReplaceAll(name, " ", "-") + ".json"
			d.serve(h)
			start := time.Now()
			_, err := newResolver(d, clk, func(c *Config) { c.Timeout = 300 * time.Millisecond }).Resolve(context.Background(), id)
			var de *Error
			if !errors.As(err, &de) || !strings.Contains(de.Reason, "in time") {
				t.Fatalf("Resolve = %v; want refused as too slow", err)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Fatalf("a slow document held the fetch for %v", el)
			}
		})
	}
}

// TestCache: a document is reused for its max-age (between the floor and the ceiling), fetched
// again after; a failure is remembered for FailureTTL; concurrent resolutions share one fetch.
func TestCache(t *testing.T) {
	d := newDocServer(t)
	clk := &clock{now: time.Unix(1_900_000_000, 0)}
	r := newResolver(d, clk, func(c *Config) {
		c.MinTTL, c.MaxTTL, c.DefaultTTL, c.FailureTTL = time.Minute, time.Hour, 5*time.Minute, 30*time.Second
	})
	for _, tc := range []struct {
		cacheControl string
		expires      string
		ttl          time.Duration
	}{
		{"max-age=120", "", 2 * time.Minute},
		{"public, max-age=600", "", 10 * time.Minute},
		{"no-store", "", time.Minute},            // the floor: the document is needed through the flow
		{"max-age=5", "", time.Minute},           // the floor
		{"max-age=86400", "", time.Hour},         // the ceiling
		{"", "", 5 * time.Minute},                // no header: the default
		{"", "+20m", 20 * time.Minute},           // Expires
		{"max-age=180", "+20m", 3 * time.Minute}, // max-age wins over Expires
	} {
		t.Run(tc.cacheControl+" "+tc.expires, func(t *testing.T) {
			id := fmt.Sprintf("%s/c-%d.json", d.URL, d.hits.Load())
			d.serve(func(w http.ResponseWriter, req *http.Request) {
				if tc.expires != "" {
					dur, _ := time.ParseDuration(strings.TrimPrefix(tc.expires, "+"))
					w.Header().Set("Expires", clk.Now().Add(dur).UTC().Format(http.TimeFormat))
				}
				jsonDoc(validDoc(id), tc.cacheControl)(w, req)
			})
			before := d.hits.Load()
			for range 3 {
				if _, err := r.Resolve(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			}
			clk.advance(tc.ttl - time.Second)
			if _, err := r.Resolve(context.Background(), id); err != nil || d.hits.Load() != before+1 || !r.Cached(id) {
				t.Fatalf("%d fetches within %v, want 1 (%v)", d.hits.Load()-before, tc.ttl, err)
			}
			clk.advance(time.Second)
			if r.Cached(id) {
				t.Fatal("still cached at its ttl")
			}
			r.Resolve(context.Background(), id)
			if n := d.hits.Load() - before; n != 2 {
				t.Fatalf("%d fetches after %v, want 2", n, tc.ttl)
			}
		})
	}

	t.Run("failures are remembered", func(t *testing.T) {
		id := d.URL + "/broken.json"
		d.serve(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
		before := d.hits.Load()
		for range 5 {
			if _, err := r.Resolve(context.Background(), id); err == nil {
				t.Fatal("a 404 resolved")
			}
		}
		if n := d.hits.Load() - before; n != 1 {
			t.Fatalf("%d fetches of a failing document, want 1", n)
		}
		d.serve(jsonDoc(validDoc(id), ""))
		clk.advance(30 * time.Second)
		if _, err := r.Resolve(context.Background(), id); err != nil {
			t.Fatalf("after FailureTTL, a fixed document: %v", err)
		}
	})

	t.Run("concurrent resolutions share one fetch", func(t *testing.T) {
		id := d.URL + "/shared.json"
		gate := make(chan struct{})
		d.serve(func(w http.ResponseWriter, req *http.Request) {
			<-gate
			jsonDoc(validDoc(id), "")(w, req)
		})
		before := d.hits.Load()
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := r.Resolve(context.Background(), id)
				errs <- err
			}()
		}
		deadline := time.Now().Add(5 * time.Second)
		for d.hits.Load() == before && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		close(gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := d.hits.Load() - before; n != 1 {
			t.Fatalf("%d fetches for 20 concurrent resolutions, want 1", n)
		}
	})
}

// FuzzDocument: any document body is a client or an *Error, never a panic; a client is public,
// identified by its URL, with redirect URIs that obey the rules of every registration and the
// code grant.
func FuzzDocument(f *testing.F) {
	const id = "https://agent.example/client.json"
	f.Add(validDoc(id))
	f.Add(`{"client_id":"` + id + `","redirect_uris":["javascript:1"],"client_secret":"x"}`)
	f.Add(`{"client_id":"` + id + `","redirect_uris":["https://a.example/cb"],"grant_types":["refresh_token"]}`)
	f.Add(`[1,2]`)
	r := New(Config{})
	f.Fuzz(func(t *testing.T, body string) {
		c, err := r.parse(id, []byte(body))
		if err != nil {
			var de *Error
			if !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if c.ID != id || !c.Public || c.SecretHash != "" || c.Registration != rescind.RegistrationMetadataDocument || len(c.RedirectURIs) == 0 ||
			!slices.Contains(c.GrantTypes, rescind.GrantAuthorizationCode) || slices.Contains(c.GrantTypes, rescind.GrantClientCredentials) {
			t.Fatalf("accepted %+v", c)
		}
		if err := redirect.ValidateAll(c.RedirectURIs, false); err != nil {
			t.Fatalf("accepted a redirect URI: %v", err)
		}
	})
}

// TestValidName: a name people are shown may not hide what it says: control, format
// (bidirectional, zero-width) and separator characters are refused, other scripts are not
// (audit 16 #7).
func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"Agent", true},
		{"Café 日本 مرحبا עברית", true},
		{"a\u0007b", false},
		{"Rescind \u202eppA nimdA\u202c", false}, // right-to-left override, pop
		{"Resc\u200bind", false},                 // zero-width space
		{"Resc\u200dind", false},                 // zero-width joiner
		{"\u2067Admin\u2069", false},             // right-to-left isolate
		{"\ufeffAgent", false},                   // byte order mark
		{"a\u2028b", false},                      // line separator
		{"a\u2029b", false},                      // paragraph separator
		{"\xff", false},
		// Blank letters and symbols, and stacks of combining marks (re-audit 3A #7).
		{"Rescind\u3164Admin", false},                                    // Hangul filler
		{"Rescind\u2800Admin", false},                                    // braille pattern blank
		{"Rescind\u115f\u1160", false},                                   // Hangul choseong and jungseong fillers
		{"Rescind\uffa0Admin", false},                                    // halfwidth Hangul filler
		{"Resc\u034find", false},                                         // combining grapheme joiner
		{"Resc\u17b4ind", false},                                         // Khmer vowel inherent
		{"Z" + strings.Repeat("\u0310\u0352\u0315\u0329", 24), false},    // 96 marks on one letter
		{"Z\u0310\u0352\u0315\u0329\u0336", false},                       // 5
		{"Z\u0310\u0352\u0315\u0329", true},                              // 4
		{"\u0310\u0352\u0315\u0329\u0336Agent", false},                   // 5 before any letter
		{"Vi\u0323\u0302\u0301t Nam", true},                              // Vietnamese, decomposed
		{"\u05e9\u05bc\u05c1\u05b8\u0591\u05dc\u05d5\u05b9\u05dd", true}, // Hebrew with points and a cantillation mark
		{"\u0915\u094d\u0937\u093f", true},                               // Devanagari conjunct
		{"Photo Printer \u2764\ufe0f", true},                             // emoji presentation selector
		{"\ud55c\uad6d\uc5b4 App", true},                                 // Hangul syllables
	} {
		if got := ValidName(tc.name); got != tc.want {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
