// Command resource-server is an API protected by the resource package: it accepts access tokens
// from a Rescind server (or any RFC 9068 issuer), refuses revoked ones (at once through the
// revocation event stream, else within the status list's ttl), and publishes its OAuth 2.0
// Protected Resource Metadata (RFC 9728), so that a client knowing only its URL, such as an AI
// agent with the MCP SDK, finds where to get a token and for which resource.
//
//	rescind client create --name photos-api --resource-server --resource http://127.0.0.1:9000 --output env
//	ADDR=127.0.0.1:9000 RESCIND_ISSUER=http://127.0.0.1:8080 AUDIENCE=http://127.0.0.1:9000 \
//	  RESCIND_CLIENT_ID=... RESCIND_CLIENT_SECRET=... go run ./examples/resource-server
//
// It reads:
//   - ADDR, the address to listen on (default 127.0.0.1:9000);
//   - RESCIND_ISSUER, the authorization server;
//   - AUDIENCE, its resource identifier: the resource of its metadata, the URL the metadata's
//     well-known path is built from (RFC 9728 §3.1: AUDIENCE http://127.0.0.1:9000 publishes
//     it at /.well-known/oauth-protected-resource, AUDIENCE https://api.example/photos at
//     /.well-known/oauth-protected-resource/photos), and the audience tokens must have, which
//     clients ask for with the RFC 8707 resource parameter. Default: the issuer, the audience
//     of tokens requested without one;
//   - RESCIND_CLIENT_ID and RESCIND_CLIENT_SECRET, the API's own client, registered as a
//     resource server for AUDIENCE: only then may it introspect other clients' opaque tokens and
//     receive their revocations (a client that is not a resource server is told only of its own
//     tokens). Without them, JWTs only, and no push.
//
// then: curl -i http://127.0.0.1:9000/photos (401, naming the metadata), and
// curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9000/photos
//
// DPoP-bound tokens (RFC 9449) are accepted too, as "Authorization: DPoP $TOKEN" with a DPoP
// proof header, and only so: a bound token copied without its key is refused. A proof names the
// URL it was made for (htu): BASE_URL is this server's URL as clients address it, by default
// http://ADDR (so with the default ADDR, clients call http://127.0.0.1:9000/photos). Set it
// behind a proxy or TLS terminator, or when ADDR listens on every interface (":9000",
// "0.0.0.0:9000"): then there is no default, and bound tokens are refused until it is set.
// It never comes from the request's Host header, which the sender chooses. DPOP_NONCE=1 makes
// proofs carry a nonce of this server (RFC 9449 §9).
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/resource"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	addr := envOr("ADDR", "127.0.0.1:9000")
	baseURL := envOr("BASE_URL", defaultBaseURL(addr))
	if baseURL == "" {
		log.Printf("BASE_URL is not set and ADDR %s names no one address: DPoP-bound tokens will be refused", addr)
	}
	mw, err := resource.New(ctx, resource.Config{
		Issuer:         os.Getenv("RESCIND_ISSUER"),
		Audience:       os.Getenv("AUDIENCE"), // empty: the issuer, the default audience of tokens
		RequiredScopes: []string{"read"},
		ResourceName:   "Photos (Rescind example)",
		// The resource server's own client: for the event stream and for opaque tokens.
		ClientID:     os.Getenv("RESCIND_CLIENT_ID"),
		ClientSecret: os.Getenv("RESCIND_CLIENT_SECRET"),
		Push:         os.Getenv("RESCIND_CLIENT_ID") != "",
		// DPoP-bound tokens are checked with their proofs; Bearer tokens work as before.
		BaseURL:    baseURL,
		DPoPNonces: nonces(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer mw.Close()

	mux := http.NewServeMux()
	// RFC 9728: where the AUDIENCE says; every 401 below names it.
	mux.Handle(mw.MetadataPath(), mw.MetadataHandler())
	mux.Handle("GET /photos", mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFrom(r.Context())
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"photos": []string{"cat.jpg"}, "sub": c.Subject, "client_id": c.ClientID})
	})))
	mux.HandleFunc("GET /staleness", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"bound": mw.StalenessBound().String()})
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	log.Printf("resource server on http://%s, protected resource metadata at %s (staleness bound %v)", addr, mw.MetadataURL(), mw.StalenessBound())
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// nonces returns the DPoP nonces to demand if DPOP_NONCE=1, under a random key (one process).
func nonces() *dpop.Nonces {
	if os.Getenv("DPOP_NONCE") != "1" {
		return nil
	}
	key := make([]byte, 32)
	rand.Read(key)
	n, err := dpop.NewNonces(key, 0)
	if err != nil {
		log.Fatal(err)
	}
	return n
}

// defaultBaseURL is http://addr, the URL clients address this server by when they reach it
// directly, or "" when addr listens on every interface (no host, 0.0.0.0, ::) and so says
// nothing of that URL.
func defaultBaseURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	return "http://" + net.JoinHostPort(host, port)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
