package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/rescind/rescind/admin"
)

// TestGolangOAuth2Interop gets tokens with golang.org/x/oauth2/clientcredentials, in both of its
// authentication styles, for a client whose secret needs RFC 6749 §2.3.1 encoding.
func TestGolangOAuth2Interop(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	const sec = "s:e%c+r e\u00e9t/?&="
	var c admin.ClientInfo
	json.Unmarshal([]byte(cliInput(t, sec, "client", "create", "--data-dir", data, "--name", "x", "--scope", "read write", "--secret-stdin")), &c)

	for name, style := range map[string]oauth2.AuthStyle{"header": oauth2.AuthStyleInHeader, "params": oauth2.AuthStyleInParams, "auto": oauth2.AuthStyleAutoDetect} {
		t.Run(name, func(t *testing.T) {
			cfg := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: sec, TokenURL: srv.url + "/oauth2/token",
				Scopes: []string{"read"}, AuthStyle: style}
			tok, err := cfg.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "Bearer" || tok.Expiry.IsZero() || tok.Extra("scope") != "read" {
				t.Fatalf("token = %+v scope %v", tok, tok.Extra("scope"))
			}
			if !srv.active(c.ClientID, sec, tok.AccessToken) {
				t.Fatal("token inactive")
			}
		})
	}
	bad := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: "wrong", TokenURL: srv.url + "/oauth2/token"}
	_, err := bad.Token(context.Background())
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != 401 {
		t.Fatalf("wrong secret: %v", err)
	}
}
