package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rescind/rescind/admin"
)

func newClientCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Manage OAuth clients (through the running server's admin API)",
	}
	addSettingFlags(cmd, true, "admin_url", "admin_ca")
	cmd.AddCommand(newClientCreateCommand(), newClientListCommand(), newClientGetCommand(), newClientDeleteCommand(),
		newClientUpdateCommand(), newClientRotateSecretCommand())
	return cmd
}

func newClientCreateCommand() *cobra.Command {
	var (
		req          admin.CreateClientRequest
		ttl          time.Duration
		output       string
		grantTypes   []string
		redirectURIs []string
		secretStdin  bool
		secretArgv   string
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME [flags]",
		Short: "Register a client and print it, with its secret (shown this once)",
		Example: `  rescind client create --name billing --scope "read write"
  eval "$(rescind client create --name demo --scope read --output env)"   # sets RESCIND_CLIENT_ID, RESCIND_CLIENT_SECRET
  rescind client create --name api --resource-server --resource https://api.example   # may introspect tokens for it
  rescind client create --name agent --allowed-resource https://api.example            # tokens for that API only
  printf '%s' "$SECRET" | rescind client create --name legacy --secret-stdin            # a secret of your own`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if output != "json" && output != "env" {
				return fmt.Errorf("--output must be json or env")
			}
			if ttl < 0 || ttl%time.Second != 0 {
				return fmt.Errorf("--token-ttl must be a whole number of seconds, such as 15m or 1h")
			}
			req.TokenTTL = int64(ttl / time.Second)
			for _, g := range grantTypes {
				req.GrantTypes = append(req.GrantTypes, strings.Fields(strings.ReplaceAll(g, ",", " "))...)
			}
			req.RedirectURIs = redirectURIs
			if cmd.Flags().Changed("secret") {
				return errors.New("--secret is not accepted: a secret on the command line is visible to other users " +
					"(ps, /proc, shell history); pipe it in with --secret-stdin instead")
			}
			if secretStdin {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4097))
				if err != nil {
					return fmt.Errorf("reading the secret from stdin: %w", err)
				}
				req.Secret = strings.TrimRight(string(b), "\r\n")
				if req.Secret == "" || len(req.Secret) > 4096 {
					return errors.New("--secret-stdin: stdin must hold the secret (1 to 4096 bytes)")
				}
			}
			info, err := adminClient(cfg).CreateClient(cmd.Context(), req)
			if err != nil {
				return err
			}
			if output == "env" {
				fmt.Fprintf(cmd.OutOrStdout(), "export RESCIND_CLIENT_ID=%s\nexport RESCIND_CLIENT_SECRET=%s\n",
					shellQuote(info.ClientID), shellQuote(info.ClientSecret))
				return nil
			}
			return printJSON(cmd.OutOrStdout(), info)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "client name (required)")
	f.StringSliceVar(&grantTypes, "grant-types", nil, "grant types, comma-separated (default: authorization_code,refresh_token for --public; "+
		"those and client_credentials with --redirect-uri; else client_credentials)")
	f.StringVar(&req.Scope, "scope", "", `space-separated scopes the client may be granted, e.g. "read write"`)
	f.BoolVar(&secretStdin, "secret-stdin", false, "read the client secret from stdin instead of generating one")
	f.StringVar(&secretArgv, "secret", "", "removed: use --secret-stdin")
	f.MarkHidden("secret")
	f.BoolVar(&req.Public, "public", false, "a public client, without a secret")
	f.DurationVar(&ttl, "token-ttl", 0, "access token lifetime (default: the server's)")
	f.StringArrayVar(&redirectURIs, "redirect-uri", nil, "a redirect URI (repeatable)")
	f.StringVar(&req.TokenFormat, "token-format", "opaque", "access token format: opaque or jwt (RFC 9068, with a Token Status List entry)")
	f.BoolVar(&req.AllowPlainPKCE, "allow-plain-pkce", false, `allow the "plain" PKCE method, for a confidential client (S256 is required otherwise)`)
	f.BoolVar(&req.ResourceServer, "resource-server", false, "a resource server: may introspect access tokens for its --resource URIs "+
		"(every access token without any) and receive their revocation events")
	f.StringArrayVar(&req.Resources, "resource", nil, "a resource URI this resource server serves (repeatable; needs --resource-server)")
	f.BoolVar(&req.AllowInsecureRedirect, "allow-insecure-redirect", false, "allow plain-http redirect URIs on hosts other than loopback (development only)")
	f.StringArrayVar(&req.AllowedResources, "allowed-resource", nil, "a resource URI (RFC 8707) the client may ask tokens for (repeatable; default: any)")
	f.BoolVar(&req.RequireDPoP, "require-dpop", false, "every token request must carry a DPoP proof (RFC 9449): all the client's access tokens are bound to its key")
	f.BoolVar(&req.FirstParty, "first-party", false, "your own app: a public client skips the consent page for scopes already granted "+
		"(other public clients get it every time)")
	f.StringVarP(&output, "output", "o", "json", "output format: json, or env for shell variables")
	addOIDCFlags(f, &req.IDTokenAlg, &req.PostLogoutRedirectURIs, &req.BackchannelLogoutURI, &req.BackchannelLogoutSessionRequired)
	cmd.MarkFlagRequired("name")
	return cmd
}

func newClientListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List clients as JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			list, err := adminClient(cfg).ListClients(cmd.Context())
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), list)
		},
	}
}

func newClientGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get CLIENT_ID",
		Short: "Show one client as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			info, err := adminClient(cfg).GetClient(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), info)
		},
	}
}

func newClientUpdateCommand() *cobra.Command {
	var (
		name, scope      string
		ttl              time.Duration
		redirectURIs     []string
		allowedResources []string
		requireDPoP      bool
		firstParty       bool
		oidc             admin.OIDC
	)
	cmd := &cobra.Command{
		Use: "update CLIENT_ID [--name NAME] [--scope SCOPES] [--token-ttl DURATION] [--redirect-uri URI ...] [--allowed-resource URI ...] " +
			"[--require-dpop[=false]] [--first-party[=false]]",
		Short: "Change a client's name, scopes, token lifetime, redirect URIs, allowed resources, DPoP requirement or first-party mark, and print it",
		Long: `Change a client: each flag given replaces that field (--redirect-uri, repeated, replaces the
list). A new --token-ttl applies to tokens issued from then on; tokens already issued keep
their expiry, and revoked ones stay revoked until it. --require-dpop makes every token request
carry a DPoP proof from then on (--require-dpop=false lifts it).`,
		Example: `  rescind client update ID --token-ttl 15m
  rescind client update ID --scope "read write" --redirect-uri https://app.example/cb --redirect-uri https://app.example/cb2
  rescind client update ID --require-dpop`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			var req admin.UpdateClientRequest
			f := cmd.Flags()
			if f.Changed("name") {
				req.Name = &name
			}
			if f.Changed("scope") {
				req.Scope = &scope
			}
			if f.Changed("token-ttl") {
				if ttl < 0 || ttl%time.Second != 0 {
					return fmt.Errorf("--token-ttl must be a whole number of seconds, such as 15m or 1h (0: the server default)")
				}
				secs := int64(ttl / time.Second)
				req.TokenTTL = &secs
			}
			if f.Changed("redirect-uri") {
				req.RedirectURIs = &redirectURIs
			}
			if f.Changed("allowed-resource") {
				list := []string{}
				for _, r := range allowedResources {
					if r != "" { // --allowed-resource "": any
						list = append(list, r)
					}
				}
				req.AllowedResources = &list
			}
			if f.Changed("require-dpop") {
				req.RequireDPoP = &requireDPoP
			}
			if f.Changed("first-party") {
				req.FirstParty = &firstParty
			}
			if f.Changed("id-token-alg") {
				req.IDTokenAlg = &oidc.IDTokenAlg
			}
			if f.Changed("post-logout-redirect-uri") {
				req.PostLogoutRedirectURIs = &oidc.PostLogoutRedirectURIs
			}
			if f.Changed("backchannel-logout-uri") {
				req.BackchannelLogoutURI = &oidc.BackchannelLogoutURI
			}
			if f.Changed("backchannel-logout-session-required") {
				req.BackchannelLogoutSessionRequired = &oidc.BackchannelLogoutSessionRequired
			}
			if req == (admin.UpdateClientRequest{}) {
				return fmt.Errorf("nothing to change: give --name, --scope, --token-ttl, --redirect-uri, --allowed-resource, --require-dpop, --first-party, " +
					"--id-token-alg, --post-logout-redirect-uri, --backchannel-logout-uri or --backchannel-logout-session-required")
			}
			info, err := adminClient(st).UpdateClient(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), info)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new client name")
	f.StringVar(&scope, "scope", "", `space-separated scopes the client may be granted, e.g. "read write"`)
	f.DurationVar(&ttl, "token-ttl", 0, "access token lifetime (0: the server's)")
	f.StringArrayVar(&redirectURIs, "redirect-uri", nil, "a redirect URI (repeatable; replaces the list)")
	f.StringArrayVar(&allowedResources, "allowed-resource", nil, `a resource URI the client may ask tokens for (repeatable; replaces the list; --allowed-resource "" for any)`)
	f.BoolVar(&requireDPoP, "require-dpop", false, "every token request must carry a DPoP proof (RFC 9449); --require-dpop=false lifts it")
	f.BoolVar(&firstParty, "first-party", false, "first-party (--first-party=false: no longer)")
	addOIDCFlags(f, &oidc.IDTokenAlg, &oidc.PostLogoutRedirectURIs, &oidc.BackchannelLogoutURI, &oidc.BackchannelLogoutSessionRequired)
	return cmd
}

// addOIDCFlags adds the OpenID Connect flags of client create and update.
func addOIDCFlags(f *pflag.FlagSet, alg *string, postLogout *[]string, backchannel *string, sessionRequired *bool) {
	f.StringVar(alg, "id-token-alg", "", "algorithm of the client's ID tokens and logout tokens: RS256 (the default), ES256 or EdDSA")
	f.StringArrayVar(postLogout, "post-logout-redirect-uri", nil, "where the end-session endpoint may send the browser after logout (repeatable; exact match)")
	f.StringVar(backchannel, "backchannel-logout-uri", "", "receives a logout token (OpenID Connect Back-Channel Logout) when a session the client signed in with ends")
	f.BoolVar(sessionRequired, "backchannel-logout-session-required", false, "the client needs sid in logout tokens (always sent)")
}

func newClientRotateSecretCommand() *cobra.Command {
	var overlap time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-secret CLIENT_ID [--overlap DURATION]",
		Short: "Give a client a new secret and print it (shown this once)",
		Long: `Give a confidential client a new secret and print the client as JSON with its new
client_secret. The old secret keeps working for --overlap (default 24h), so the client can be
redeployed with the new one meanwhile; after that it never works again. A leaked secret is
rotated with --overlap 0: the old one stops at once.`,
		Example: `  rescind client rotate-secret ID                # the old secret works for another 24h
  rescind client rotate-secret ID --overlap 0    # a leaked secret: the old one stops now`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if overlap < 0 {
				return fmt.Errorf("--overlap must not be negative")
			}
			d := admin.Duration(overlap)
			info, err := adminClient(st).RotateSecret(cmd.Context(), args[0], admin.RotateSecretRequest{Overlap: &d})
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), info)
		},
	}
	cmd.Flags().DurationVar(&overlap, "overlap", admin.DefaultSecretOverlap, "how long the old secret keeps working (0: it stops at once)")
	return cmd
}

func newClientDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete CLIENT_ID",
		Short: "Delete a client and revoke every token it holds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if err := adminClient(cfg).DeleteClient(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted client %s; its tokens are revoked\n", args[0])
			return nil
		},
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
