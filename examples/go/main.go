// Command example gets a token, introspects it, revokes it and introspects it again with the
// github.com/rescind/rescind/client package, at any RFC 7009/7662 server. It introspects its own
// token: at Rescind a client may; other clients' tokens need a resource-server client.
//
//	RESCIND_ISSUER=http://127.0.0.1:8080 RESCIND_CLIENT_ID=... RESCIND_CLIENT_SECRET=... go run ./examples/go
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/rescind/rescind/client"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &client.Client{
		Issuer:       os.Getenv("RESCIND_ISSUER"), // endpoints and auth method come from discovery
		ClientID:     os.Getenv("RESCIND_CLIENT_ID"),
		ClientSecret: os.Getenv("RESCIND_CLIENT_SECRET"),
	}
	tok, err := c.ClientCredentials(ctx)
	if err != nil {
		log.Fatal(err)
	}
	before, err := c.Introspect(ctx, tok.AccessToken, "access_token")
	if err != nil {
		log.Fatal(err)
	}
	// RevokeToken revokes the refresh token (if any), then the access token. A nil error means
	// HTTP 200, which RFC 7009 also answers for unknown tokens.
	if err := c.RevokeToken(ctx, tok); err != nil {
		log.Fatal(err)
	}
	after, err := c.Introspect(ctx, tok.AccessToken, "access_token")
	if err != nil {
		log.Fatal(err)
	}
	if !before.Active || after.Active {
		log.Fatalf("unexpected: active before=%v, after=%v", before.Active, after.Active)
	}
	fmt.Println("ok: token revoked; introspection says active=false")
}
