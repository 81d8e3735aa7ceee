package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/rescind/rescind/client"
	"github.com/rescind/rescind/dpop"
)

// remoteFlags are the flags of the commands that call an authorization server's endpoints
// (revoke, introspect, token): any RFC 7009/7662 server, not only Rescind.
type remoteFlags struct {
	issuer, clientID, secretFile, authMethod, endpoint string
	verbose                                            bool
	timeout                                            time.Duration
}

func (f *remoteFlags) register(cmd *cobra.Command, endpointName string) {
	fs := cmd.Flags()
	fs.StringVar(&f.issuer, "issuer", os.Getenv("RESCIND_ISSUER"), "authorization server issuer URL, for discovery (env RESCIND_ISSUER)")
	fs.StringVar(&f.clientID, "client-id", os.Getenv("RESCIND_CLIENT_ID"), "client id (env RESCIND_CLIENT_ID)")
	fs.StringVar(&f.secretFile, "client-secret-file", "", "file holding the client secret (else env RESCIND_CLIENT_SECRET; neither: a public client)")
	fs.StringVar(&f.authMethod, "auth-method", "", "client_secret_basic, client_secret_post or none (default: from the server's metadata)")
	fs.StringVar(&f.endpoint, "endpoint", "", "the "+endpointName+" endpoint URL, instead of discovering it from --issuer")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "print the HTTP exchange to stderr, with secrets and tokens masked")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "timeout for the whole operation")
}

// client builds the client; set is called with the endpoint URL when --endpoint is given.
func (f *remoteFlags) client(cmd *cobra.Command, set func(c *client.Client, u string)) (*client.Client, error) {
	if f.issuer == "" && f.endpoint == "" {
		return nil, errors.New("--issuer or --endpoint is required")
	}
	if f.clientID == "" {
		return nil, errors.New("--client-id is required (or set RESCIND_CLIENT_ID)")
	}
	sec := os.Getenv("RESCIND_CLIENT_SECRET")
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return nil, fmt.Errorf("reading client secret: %w", err)
		}
		sec = strings.TrimRight(string(b), "\r\n")
	}
	switch f.authMethod {
	case "", client.AuthBasic, client.AuthPost, client.AuthNone:
	default:
		return nil, fmt.Errorf("--auth-method must be client_secret_basic, client_secret_post or none")
	}
	hc := &http.Client{Timeout: f.timeout}
	if f.verbose {
		hc.Transport = &verboseTransport{w: cmd.ErrOrStderr(), next: http.DefaultTransport}
	}
	c := &client.Client{Issuer: f.issuer, ClientID: f.clientID, ClientSecret: sec, AuthMethod: f.authMethod, HTTPClient: hc}
	if f.endpoint != "" {
		set(c, f.endpoint)
	}
	return c, nil
}

// tokenSource is where revoke and introspect take the token from: the argument, stdin (the
// argument "-"), or --token-file (a file, or "-" for stdin).
type tokenSource struct {
	file string
}

func (ts *tokenSource) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&ts.file, "token-file", "", `read the token from this file ("-": stdin) instead of the argument`)
}

// read returns the token, trimmed of surrounding whitespace. An argument that names an
// existing file is sent as it is, with a warning: it is far more likely a mistake than a token.
func (ts *tokenSource) read(cmd *cobra.Command, args []string) (string, error) {
	var raw, from string
	switch {
	case len(args) == 1 && ts.file != "":
		return "", errors.New("give the token either as an argument or with --token-file, not both")
	case len(args) == 0 && ts.file == "":
		return "", errors.New(`a token is required: as the argument, "-" to read it from stdin, or --token-file FILE`)
	case ts.file == "-" || (len(args) == 1 && args[0] == "-"):
		b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
		if err != nil {
			return "", fmt.Errorf("reading the token from stdin: %w", err)
		}
		raw, from = string(b), "stdin"
	case ts.file != "":
		f, err := os.Open(ts.file)
		if err != nil {
			return "", fmt.Errorf("reading the token: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, 1<<20))
		if err != nil {
			return "", fmt.Errorf("reading the token from %s: %w", ts.file, err)
		}
		raw, from = string(b), ts.file
	default:
		raw, from = args[0], "the argument"
		if fi, err := os.Stat(raw); err == nil && fi.Mode().IsRegular() {
			fmt.Fprintf(cmd.ErrOrStderr(), "rescind: warning: the argument %q names an existing file, but it is sent as the "+
				"token itself; to send the file's content, use --token-file %s\n", raw, shellQuote(raw))
		}
	}
	tok := strings.TrimSpace(raw)
	if tok == "" {
		return "", fmt.Errorf("the token from %s is empty", from)
	}
	if strings.ContainsFunc(tok, unicode.IsSpace) {
		return "", fmt.Errorf("the token from %s contains whitespace: give exactly one token (OAuth tokens never contain spaces)", from)
	}
	return tok, nil
}

func newRevokeCommand() *cobra.Command {
	var f remoteFlags
	var ts tokenSource
	var hint string
	cmd := &cobra.Command{
		Use:   "revoke [flags] (TOKEN | - | --token-file FILE)",
		Short: "Revoke a token at any RFC 7009 server",
		Long: `Revoke a token at an OAuth 2.0 revocation endpoint (RFC 7009). The token is the argument, read
from stdin when the argument is "-", or read from --token-file FILE ("-" for stdin); surrounding
whitespace is removed. Exit status 0 means the server answered 200, which RFC 7009 also sends for
tokens it does not know.`,
		Example: `  rescind revoke --issuer http://127.0.0.1:8080 --client-id ID --client-secret-file secret.txt "$TOKEN"
  rescind revoke --issuer http://127.0.0.1:8080 --client-id ID --token-file token.txt
  echo "$TOKEN" | RESCIND_CLIENT_SECRET=... rescind revoke --issuer https://auth.example --client-id ID --hint refresh_token -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd, func(c *client.Client, u string) { c.RevocationURL = u })
			if err != nil {
				return err
			}
			tok, err := ts.read(cmd, args)
			if err != nil {
				return err
			}
			ctx, cancel := contextWithTimeout(cmd, f.timeout)
			defer cancel()
			if err := c.Revoke(ctx, tok, hint); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "revoked (RFC 7009: the server answers the same for a token it does not know)")
			return nil
		},
	}
	f.register(cmd, "revocation")
	ts.register(cmd)
	cmd.Flags().StringVar(&hint, "hint", "", "token_type_hint: access_token or refresh_token")
	return cmd
}

func newIntrospectCommand() *cobra.Command {
	var f remoteFlags
	var ts tokenSource
	var hint, output string
	cmd := &cobra.Command{
		Use:   "introspect [flags] (TOKEN | - | --token-file FILE)",
		Short: "Ask any RFC 7662 server whether a token is active",
		Long: `Introspect a token at an OAuth 2.0 introspection endpoint (RFC 7662) and print the answer as
JSON: indented by default, one line with --output json. An inactive token is not an error. The
token is the argument, read from stdin when the argument is "-", or read from --token-file FILE
("-" for stdin); surrounding whitespace is removed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "pretty" && output != "json" {
				return errors.New("--output must be pretty or json")
			}
			c, err := f.client(cmd, func(c *client.Client, u string) { c.IntrospectionURL = u })
			if err != nil {
				return err
			}
			tok, err := ts.read(cmd, args)
			if err != nil {
				return err
			}
			ctx, cancel := contextWithTimeout(cmd, f.timeout)
			defer cancel()
			in, err := c.Introspect(ctx, tok, hint)
			if err != nil {
				return err
			}
			return printRaw(cmd.OutOrStdout(), in.Raw, output)
		},
	}
	f.register(cmd, "introspection")
	ts.register(cmd)
	cmd.Flags().StringVar(&hint, "hint", "", "token_type_hint: access_token or refresh_token")
	cmd.Flags().StringVarP(&output, "output", "o", "pretty", "pretty or json")
	return cmd
}

func newTokenCommand() *cobra.Command {
	var f remoteFlags
	var scope, output, dpopKey, dpopAlg string
	cmd := &cobra.Command{
		Use:   "token [flags]",
		Short: "Get an access token with the client credentials grant",
		Long: `Get an access token (RFC 6749 §4.4, client credentials) and print the token response: indented
JSON by default, one line with --output json, or only the access token with --output token.

With --dpop-key FILE the request carries a DPoP proof (RFC 9449) made with the private key in
FILE, so the token is bound to that key (token_type "DPoP"): it is useless without the key. FILE
is created (mode 0600, a new --dpop-alg key) if it does not exist; keep it as secret as a
password. An existing key is used with --dpop-alg if given (it must fit the key), else with the
algorithm of its type: ES256 for P-256, EdDSA for Ed25519; an RSA key serves RS256 and PS256
alike, so for one --dpop-alg must say which. A server nonce (use_dpop_nonce) is handled by
retrying once.`,
		Example: `  TOKEN=$(rescind token --issuer http://127.0.0.1:8080 --client-id ID --client-secret-file secret.txt --output token)
  rescind token --issuer http://127.0.0.1:8080 --client-id ID --dpop-key dpop.pem    # a DPoP-bound token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "pretty" && output != "json" && output != "token" {
				return errors.New("--output must be pretty, json or token")
			}
			c, err := f.client(cmd, func(c *client.Client, u string) { c.TokenURL = u })
			if err != nil {
				return err
			}
			if dpopKey != "" {
				if c.DPoP, err = loadOrCreateDPoPKey(cmd.ErrOrStderr(), dpopKey, dpopAlg, cmd.Flags().Changed("dpop-alg")); err != nil {
					return err
				}
			}
			ctx, cancel := contextWithTimeout(cmd, f.timeout)
			defer cancel()
			tok, err := c.ClientCredentials(ctx, strings.Fields(scope)...)
			if err != nil {
				return err
			}
			if output == "token" {
				fmt.Fprintln(cmd.OutOrStdout(), tok.AccessToken)
				return nil
			}
			resp := map[string]any{}
			for _, k := range []string{"access_token", "token_type", "expires_in", "refresh_token", "scope"} {
				if v := tok.Extra(k); v != nil {
					resp[k] = v
				}
			}
			b, _ := json.Marshal(resp)
			return printRaw(cmd.OutOrStdout(), b, output)
		},
	}
	f.register(cmd, "token")
	cmd.Flags().StringVar(&scope, "scope", "", `space-separated scopes to request, e.g. "read write"`)
	cmd.Flags().StringVarP(&output, "output", "o", "pretty", "pretty, json or token")
	cmd.Flags().StringVar(&dpopKey, "dpop-key", "", "bind the token to the DPoP key in this PEM file (RFC 9449), created if missing")
	cmd.Flags().StringVar(&dpopAlg, "dpop-alg", dpop.ES256, "algorithm of a key --dpop-key creates: ES256, EdDSA, RS256 or PS256")
	return cmd
}

// loadOrCreateDPoPKey reads the DPoP key in path (PKCS #8 PEM), or, if there is no such file,
// generates one for alg and writes it there, mode 0600, saying so on w. An existing key is used
// with alg if algSet (the --dpop-alg flag was given), else with its type's algorithm; an RSA key
// has two (RS256, PS256), so it needs algSet.
func loadOrCreateDPoPKey(w io.Writer, path, alg string, algSet bool) (*dpop.Key, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(w, "rescind: warning: the DPoP key %s is readable by others (mode %s): chmod 600 %s\n",
				path, fi.Mode().Perm(), shellQuote(path))
		}
		if !algSet {
			alg = ""
		}
		var k *dpop.Key
		if k, err = dpop.ParseKey(b, alg); err != nil {
			return nil, fmt.Errorf("--dpop-key %s: %w", path, err)
		}
		if !algSet && (k.Algorithm() == dpop.RS256 || k.Algorithm() == dpop.PS256) {
			return nil, fmt.Errorf("--dpop-key %s is an RSA key, which serves RS256 and PS256: say which with --dpop-alg", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--dpop-key: %w", err)
	}
	k, err := dpop.GenerateKey(alg)
	if err != nil {
		return nil, fmt.Errorf("--dpop-alg: %w", err)
	}
	pemBytes, err := k.MarshalPEM()
	if err != nil {
		return nil, err
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--dpop-key: creating the key file: %w", err)
	}
	_, err = file.Write(pemBytes)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("--dpop-key: writing the key file: %w", err)
	}
	fmt.Fprintf(w, "rescind: created the DPoP key %s (%s, thumbprint %s)\n", path, k.Algorithm(), k.Thumbprint())
	if alg == dpop.RS256 || alg == dpop.PS256 {
		fmt.Fprintf(w, "rescind: an RSA key serves RS256 and PS256: give --dpop-alg %s with it every time\n", alg)
	}
	return k, nil
}

func printRaw(w io.Writer, raw []byte, output string) error {
	var buf bytes.Buffer
	var err error
	if output == "json" {
		err = json.Compact(&buf, raw)
	} else {
		err = json.Indent(&buf, raw, "", "  ")
	}
	if err != nil {
		return fmt.Errorf("server answered invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// verboseTransport prints each exchange to w with secrets and tokens masked.
type verboseTransport struct {
	w    io.Writer
	next http.RoundTripper
}

// maskedForm are form parameters and JSON members whose values are secrets or tokens.
var maskedForm = map[string]bool{"token": true, "client_secret": true, "refresh_token": true, "access_token": true,
	"id_token": true, "code": true, "code_verifier": true, "assertion": true, "password": true}

func (t *verboseTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	fmt.Fprintf(t.w, "> %s %s\n", r.Method, r.URL.Redacted())
	printHeaders(t.w, "> ", r.Header)
	if len(body) > 0 {
		fmt.Fprintf(t.w, "> %s\n", maskBody(body))
	}
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		fmt.Fprintf(t.w, "< error: %v\n", err)
		return nil, err
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	fmt.Fprintf(t.w, "< %s %s\n", resp.Proto, resp.Status)
	printHeaders(t.w, "< ", resp.Header)
	if len(rb) > 0 {
		fmt.Fprintf(t.w, "< %s\n", maskBody(rb))
	}
	return resp, nil
}

func printHeaders(w io.Writer, prefix string, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			if strings.EqualFold(k, "Authorization") {
				scheme, _, _ := strings.Cut(v, " ")
				v = scheme + " ****"
			}
			if strings.EqualFold(k, "DPoP") { // a proof: replayable until the server has seen it
				v = "****"
			}
			fmt.Fprintf(w, "%s%s: %s\n", prefix, k, v)
		}
	}
}

// maskBody masks secret values in a form-encoded or JSON body.
func maskBody(b []byte) string {
	var obj map[string]any
	if json.Unmarshal(b, &obj) == nil {
		for k := range obj {
			if maskedForm[k] {
				obj[k] = "****"
			}
		}
		out, _ := json.Marshal(obj)
		return string(out)
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return "(body not shown)"
	}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range form[k] {
			if maskedForm[k] {
				v = "****"
			} else {
				v = url.QueryEscape(v)
			}
			parts = append(parts, url.QueryEscape(k)+"="+v)
		}
	}
	return strings.Join(parts, "&")
}
