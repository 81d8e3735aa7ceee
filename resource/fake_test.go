package resource

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/rescind/rescind/token"
)

// fakeAS is an authorization server for the tests: metadata, a JWKS with one ES256 key, one
// status list of 1024 entries, and an event stream the test feeds.
type fakeAS struct {
	*httptest.Server
	key     *ecdsa.PrivateKey
	kid     string
	mu      sync.Mutex
	revoked map[int64]bool
	ttl     int64
	listErr bool
	fetches int
	events  chan string
	scope   string // the Rescind-Events-Scope header of the event stream, if set
	// extra are published in the JWKS besides the main key; jwksCache, if set, is its
	// Cache-Control; jwksFetches counts its fetches.
	extra       []jose.JSONWebKey
	jwksCache   string
	jwksFetches int
	// introActive makes the introspection endpoint answer active (else {"active":false});
	// introspections counts its calls.
	introActive    bool
	introspections int
	// endStream ends the event stream open at the time; streams counts the streams opened.
	endStream chan struct{}
	streams   int
}

func newFakeAS(t testing.TB) *fakeAS {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	as := &fakeAS{key: k, kid: "k1", revoked: map[int64]bool{}, ttl: 60, events: make(chan string, 10), endStream: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": as.URL, "jwks_uri": as.URL + "/jwks",
			"introspection_endpoint": as.URL + "/introspect", "revocation_events_endpoint": as.URL + "/events"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		as.mu.Lock()
		defer as.mu.Unlock()
		as.jwksFetches++
		if as.jwksCache != "" {
			w.Header().Set("Cache-Control", as.jwksCache)
		}
		keys := append([]jose.JSONWebKey{{Key: &as.key.PublicKey, KeyID: as.kid, Algorithm: "ES256", Use: "sig"}}, as.extra...)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
	})
	mux.HandleFunc("GET /list", func(w http.ResponseWriter, r *http.Request) {
		as.mu.Lock()
		defer as.mu.Unlock()
		as.fetches++
		if as.listErr {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		raw := make([]byte, 128)
		for i := range as.revoked {
			token.SetStatus(raw, i)
		}
		lst, _ := token.EncodeStatusList(raw)
		w.Header().Set("Content-Type", "application/statuslist+jwt")
		fmt.Fprint(w, as.sign(token.StatusListClaims{Subject: as.URL + "/list", IssuedAt: time.Now().Unix(), TTL: as.ttl,
			StatusList: token.StatusListBody{Bits: 1, Lst: lst}}, "statuslist+jwt", as.kid, jose.ES256, as.key))
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		as.mu.Lock()
		defer as.mu.Unlock()
		as.introspections++
		w.Header().Set("Content-Type", "application/json")
		if !as.introActive {
			fmt.Fprint(w, `{"active":false}`)
			return
		}
		now := time.Now().Unix()
		json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "alice", "client_id": "app", "scope": "read",
			"iat": now, "exp": now + 600, "jti": "opaque-1", "token_type": "Bearer"})
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if as.scope != "" {
			w.Header().Set("Rescind-Events-Scope", as.scope)
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		as.mu.Lock()
		as.streams++
		as.mu.Unlock()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-as.endStream:
				return
			case e := <-as.events:
				fmt.Fprintf(w, "id: 1\nevent: revocation\ndata: %s\n\n", e)
				w.(http.Flusher).Flush()
			}
		}
	})
	as.Server = httptest.NewServer(mux)
	t.Cleanup(as.Close)
	return as
}

func (as *fakeAS) sign(claims any, typ, kid string, alg jose.SignatureAlgorithm, key any) string {
	b, _ := json.Marshal(claims)
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		panic(err)
	}
	j, _ := s.Sign(b)
	out, _ := j.CompactSerialize()
	return out
}

// streamsOpened returns how many event streams were opened.
func (as *fakeAS) streamsOpened() int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.streams
}

// introCalls returns how many times the introspection endpoint was called.
func (as *fakeAS) introCalls() int {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.introspections
}

// claims returns valid access token claims with status entry idx.
func (as *fakeAS) claims(idx int64) map[string]any {
	now := time.Now().Unix()
	return map[string]any{"iss": as.URL, "sub": "alice", "aud": "https://api.example", "exp": now + 600, "iat": now,
		"jti": fmt.Sprintf("jti-%d", idx), "client_id": "app", "scope": "read write",
		"status": map[string]any{"status_list": map[string]any{"idx": idx, "uri": as.URL + "/list"}}}
}

func (as *fakeAS) token(c map[string]any) string {
	return as.sign(c, "at+jwt", as.kid, jose.ES256, as.key)
}

func with(c map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range c {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
