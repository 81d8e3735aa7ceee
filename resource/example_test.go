package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/rescind/rescind/resource"
)

// issuer is a minimal authorization server for the example: metadata, a JWKS, and one token.
func issuer() (*httptest.Server, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k", Algorithm: "ES256", Use: "sig"}}})
	})
	claims, _ := json.Marshal(map[string]any{"iss": srv.URL, "sub": "alice", "aud": "https://api.example", "client_id": "app",
		"scope": "read", "jti": "1", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k"))
	jws, _ := signer.Sign(claims)
	tok, _ := jws.CompactSerialize()
	return srv, tok
}

func ExampleMiddleware_Handler() {
	as, tok := issuer()
	defer as.Close()

	mw, err := resource.New(context.Background(), resource.Config{
		Issuer: as.URL, Audience: "https://api.example", RequiredScopes: []string{"read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer mw.Close()
	api := httptest.NewServer(mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "hello %s, via %s", c.Subject, c.ClientID)
	})))
	defer api.Close()

	for _, auth := range []string{"Bearer " + tok, "Bearer not-a-token", ""} {
		req, _ := http.NewRequest("GET", api.URL, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 200 {
			fmt.Println(res.StatusCode, string(body))
		} else {
			fmt.Println(res.StatusCode, res.Header.Get("WWW-Authenticate") != "")
		}
	}
	// Output:
	// 200 hello alice, via app
	// 401 true
	// 401 true
}

// A resource server publishes its protected resource metadata (RFC 9728) where its resource
// identifier says, and names it in every 401, so a client that knows only the API's URL finds
// its authorization server, the resource to ask tokens for and the scopes.
func ExampleMiddleware_MetadataHandler() {
	as, _ := issuer()
	defer as.Close()

	mw, err := resource.New(context.Background(), resource.Config{
		Issuer: as.URL, Audience: "https://api.example/photos", RequiredScopes: []string{"read"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer mw.Close()
	mux := http.NewServeMux()
	mux.Handle("GET "+mw.MetadataPath(), mw.MetadataHandler())
	mux.Handle("GET /photos", mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	api := httptest.NewServer(mux)
	defer api.Close()

	res, _ := http.Get(api.URL + "/photos")
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("WWW-Authenticate"))
	res, _ = http.Get(api.URL + mw.MetadataPath())
	var md resource.ProtectedResourceMetadata
	json.NewDecoder(res.Body).Decode(&md)
	res.Body.Close()
	fmt.Println(md.Resource, md.AuthorizationServers[0] == as.URL, md.ScopesSupported, md.BearerMethodsSupported)
	// Output:
	// 401 Bearer realm="https://api.example/photos", scope="read", resource_metadata="https://api.example/.well-known/oauth-protected-resource/photos"
	// https://api.example/photos true [read] [header]
}
