// Command authcode signs a person in the way a native or command-line app does: the OAuth 2.0
// authorization code flow (RFC 6749 §4.1) with PKCE (RFC 7636) and a loopback redirect
// (RFC 8252 §7.3), with golang.org/x/oauth2. It prints the authorization URL (and opens it in a
// browser with -open), receives the code on its own listener, exchanges it, prints the token
// response, and revokes the tokens (RFC 7009) with the github.com/rescind/rescind/client package.
//
//	RESCIND_ISSUER=http://127.0.0.1:8080 RESCIND_CLIENT_ID=... go run ./examples/authcode -listen 127.0.0.1:8765
//
// The client is public (no secret) unless RESCIND_CLIENT_SECRET is set. Its registered redirect
// URI must be http://127.0.0.1:PORT/callback for the port of -listen; a server that lets a
// loopback redirect use any port (RFC 8252 §7.3) also accepts the default, -listen 127.0.0.1:0.
// See README.md beside this file.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/rescind/rescind/client"
)

func main() {
	issuer := flag.String("issuer", os.Getenv("RESCIND_ISSUER"), "authorization server issuer URL (env RESCIND_ISSUER)")
	clientID := flag.String("client-id", os.Getenv("RESCIND_CLIENT_ID"), "client id (env RESCIND_CLIENT_ID)")
	listen := flag.String("listen", "127.0.0.1:0", "loopback address for the redirect listener (port 0: any free port)")
	scope := flag.String("scope", "", `space-separated scopes to ask for, e.g. "photos.read" (default: all of the client's)`)
	open := flag.Bool("open", false, "open the authorization URL in the default browser")
	timeout := flag.Duration("timeout", 5*time.Minute, "how long to wait for the person to sign in")
	flag.Parse()
	if *issuer == "" || *clientID == "" {
		log.Fatal("set -issuer and -client-id (or RESCIND_ISSUER and RESCIND_CLIENT_ID)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, *issuer, *clientID, os.Getenv("RESCIND_CLIENT_SECRET"), *listen, *scope, *open); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, issuer, clientID, secret, listen, scope string, openBrowser bool) error {
	md, err := client.Discover(ctx, issuer, nil) // RFC 8414: where the endpoints are
	if err != nil {
		return err
	}
	// RFC 8252 §7.3: the redirect goes to a listener on the loopback interface, never to a
	// name that could resolve elsewhere.
	host, _, err := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %s must be a loopback IP address and a port, such as 127.0.0.1:8765", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	cfg := oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		Endpoint:     oauth2.Endpoint{AuthURL: md.AuthorizationEndpoint, TokenURL: md.TokenEndpoint},
		RedirectURL:  "http://" + ln.Addr().String() + "/callback",
		Scopes:       strings.Fields(scope),
	}
	if secret == "" {
		cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client sends only its client_id
	}
	state := randomString()
	verifier := oauth2.GenerateVerifier() // PKCE: the code is useless without it
	authURL := cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))

	codes := make(chan string, 1)
	errs := make(chan error, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: callback(issuer, state, codes, errs)}
	go srv.Serve(ln)
	defer srv.Shutdown(context.Background())

	fmt.Printf("Open this URL in a browser to sign in:\n\n  %s\n\nWaiting for the redirect to %s ...\n", authURL, cfg.RedirectURL)
	if openBrowser {
		openURL(authURL)
	}
	var code string
	select {
	case code = <-codes:
	case err := <-errs:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no sign-in arrived: %w", ctx.Err())
	}

	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return fmt.Errorf("exchanging the code: %w", err)
	}
	resp := map[string]any{"access_token": tok.AccessToken, "token_type": tok.TokenType, "expiry": tok.Expiry}
	for _, k := range []string{"refresh_token", "scope"} {
		if v := tok.Extra(k); v != nil && v != "" {
			resp[k] = v
		}
	}
	b, _ := json.Marshal(resp)
	fmt.Printf("Signed in. The token response:\n%s\n", b)

	// RevokeToken revokes the refresh token first (with Rescind, that revokes the whole grant),
	// then the access token.
	c := &client.Client{Issuer: issuer, ClientID: clientID, ClientSecret: secret}
	if err := c.RevokeToken(ctx, tok); err != nil {
		return fmt.Errorf("revoking: %w", err)
	}
	fmt.Println("Revoked the tokens (RFC 7009): they no longer work.")
	return nil
}

// callback handles the redirect: it checks state (CSRF, RFC 6749 §10.12) and iss (mix-up,
// RFC 9207), then hands the code over. Only the first redirect counts.
func callback(issuer, state string, codes chan<- string, errs chan<- error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var err error
		switch {
		case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1:
			err = errors.New("the redirect's state does not match: not the answer to this sign-in")
		case q.Has("iss") && q.Get("iss") != issuer:
			err = fmt.Errorf("the redirect comes from issuer %q, not %q (RFC 9207)", q.Get("iss"), issuer)
		case q.Get("error") != "":
			err = fmt.Errorf("the server refused: %s: %s", q.Get("error"), q.Get("error_description"))
		case q.Get("code") == "":
			err = errors.New("the redirect carries no code")
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "<!doctype html><title>Sign-in failed</title><p>%s</p>", html.EscapeString(err.Error()))
			select {
			case errs <- err:
			default:
			}
			return
		}
		fmt.Fprint(w, "<!doctype html><title>Signed in</title><p>Signed in. You can close this window.</p>")
		select {
		case codes <- q.Get("code"):
		default:
		}
	})
	return mux
}

func randomString() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// openURL asks the desktop to open u in the default browser; failures are ignored (the URL is
// printed anyway).
func openURL(u string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err == nil {
		go cmd.Wait()
	}
}
