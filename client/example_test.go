package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/rescind/rescind/client"
)

// fakeServer is a minimal authorization server for the examples: it knows one token, "t1",
// until it is revoked.
func fakeServer() *httptest.Server {
	revoked := false
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "token_endpoint": srv.URL + "/token",
			"revocation_endpoint": srv.URL + "/revoke", "introspection_endpoint": srv.URL + "/introspect"})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"t1","token_type":"Bearer","expires_in":3600,"scope":"read"}`)
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("token") == "t1" {
			revoked = true
		}
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.FormValue("token") == "t1" && !revoked {
			fmt.Fprint(w, `{"active":true,"scope":"read","client_id":"my-app"}`)
			return
		}
		fmt.Fprint(w, `{"active":false}`)
	})
	srv = httptest.NewServer(mux)
	return srv
}

func ExampleDiscover() {
	srv := fakeServer()
	defer srv.Close()
	md, err := client.Discover(context.Background(), srv.URL, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(md.RevocationEndpoint == srv.URL+"/revoke")
	// Output: true
}

func ExampleClient_Revoke() {
	srv := fakeServer()
	defer srv.Close()
	c := &client.Client{Issuer: srv.URL, ClientID: "my-app", ClientSecret: "s3cret"}
	// A nil error means HTTP 200: revoked, or unknown to the server (RFC 7009 §2.2).
	if err := c.Revoke(context.Background(), "t1", "access_token"); err != nil {
		log.Fatal(err)
	}
	in, _ := c.Introspect(context.Background(), "t1", "")
	fmt.Println("active:", in.Active)
	// Output: active: false
}

func ExampleClient_Introspect() {
	srv := fakeServer()
	defer srv.Close()
	c := &client.Client{Issuer: srv.URL, ClientID: "my-app", ClientSecret: "s3cret"}
	in, err := c.Introspect(context.Background(), "t1", "access_token")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(in.Active, in.Scope, in.ClientID)
	// Output: true read my-app
}

func ExampleClient_ClientCredentials() {
	srv := fakeServer()
	defer srv.Close()
	c := &client.Client{Issuer: srv.URL, ClientID: "my-app", ClientSecret: "s3cret"}
	tok, err := c.ClientCredentials(context.Background(), "read")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.AccessToken, tok.TokenType, tok.Extra("scope"))
	// Output: t1 Bearer read
}

func ExampleClient_RevokeToken() {
	srv := fakeServer()
	defer srv.Close()
	c := &client.Client{Issuer: srv.URL, ClientID: "my-app", ClientSecret: "s3cret"}
	tok, _ := c.ClientCredentials(context.Background())
	// Revokes tok.RefreshToken (if any), then tok.AccessToken.
	if err := c.RevokeToken(context.Background(), tok); err != nil {
		log.Fatal(err)
	}
	in, _ := c.Introspect(context.Background(), tok.AccessToken, "")
	fmt.Println("active:", in.Active)
	// Output: active: false
}

func ExampleBasicAuth() {
	// RFC 6749 §2.3.1: form-encode the id and secret, then Basic-encode the pair.
	fmt.Println(client.BasicAuth("my app", "p:ss+w%rd"))
	// Output: Basic bXkrYXBwOnAlM0FzcyUyQnclMjVyZA==
}
