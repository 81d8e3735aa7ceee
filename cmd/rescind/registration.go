package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rescind/rescind/admin"
)

func newRegistrationTokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registration-token",
		Short: "Manage initial access tokens for dynamic client registration (serve --registration token)",
		Long: `Manage initial access tokens (RFC 7591 §3), through the running server's admin API. With
serve --registration token, registering a client at /oauth2/register needs one, sent as
"Authorization: Bearer TOKEN". A token works for every registration until it expires or is
deleted; it is stored only as a hash and shown once, when it is created. Its --scope names the
scopes the clients registered with it may hold; without it, they get no scope by client
credentials.`,
	}
	addSettingFlags(cmd, true, "admin_url", "admin_ca")
	cmd.AddCommand(newRegistrationTokenCreateCommand(), newRegistrationTokenListCommand(), newRegistrationTokenDeleteCommand())
	return cmd
}

func newRegistrationTokenCreateCommand() *cobra.Command {
	var (
		expires time.Duration
		output  string
		scope   string
		allowed []string
	)
	cmd := &cobra.Command{
		Use:   "create [--expires 24h] [--scope \"a b\"] [--allowed-resource URI ...] [--output token|json]",
		Short: "Make an initial access token and print it (shown this once)",
		Long: `Make an initial access token and print it on standard output (shown this once; its id and
expiry go to standard error), or with --output json print {"id", "token", "created_at",
"expires_at", "scope"}. It works until --expires has passed (default 24h) or it is deleted.

--scope "a b" names the scopes the clients registered with the token may hold: a registration
naming another is refused, and each client gets them as its scope limit (as client update
--scope sets), so by client credentials, where no person consents, it gets those it registered
and no other. Without --scope, the clients it registers get no scope by client credentials
(only what a person allows them in the code flow) until you allow some with client update
--scope; --scope "" allows none at all. --allowed-resource URI (repeatable) limits them to asking
tokens for those resources (RFC 8707), as client update --allowed-resource does; without it,
any.`,
		Example: `  TOKEN=$(rescind registration-token create --expires 1h)
  curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"client_name":"agent","redirect_uris":["http://127.0.0.1:8976/cb"]}' http://127.0.0.1:8080/oauth2/register

  # A token for a deployment bot that may get "deploy" by client credentials, nothing else.
  TOKEN=$(rescind registration-token create --expires 1h --scope deploy)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if output != "token" && output != "json" {
				return fmt.Errorf("--output must be token or json")
			}
			if expires < time.Second || expires > admin.MaxRegistrationTokenTTL {
				return fmt.Errorf("--expires must be between 1s and %s", admin.MaxRegistrationTokenTTL)
			}
			d := admin.Duration(expires)
			req := admin.CreateRegistrationTokenRequest{Expires: &d, AllowedResources: allowed}
			if cmd.Flags().Changed("scope") {
				req.Scope = &scope
			}
			info, err := adminClient(st).CreateRegistrationToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(cmd.OutOrStdout(), info)
			}
			fmt.Fprintln(cmd.OutOrStdout(), info.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "registration token %s, valid until %s (delete it with: rescind registration-token delete %s)\n",
				info.ID, info.ExpiresAt.Format(time.RFC3339), info.ID)
			return nil
		},
	}
	cmd.Flags().DurationVar(&expires, "expires", admin.DefaultRegistrationTokenTTL, "how long the token works")
	cmd.Flags().StringVarP(&output, "output", "o", "token", "output: token (the token alone) or json")
	cmd.Flags().StringVar(&scope, "scope", "", `space-separated scopes the clients registered with the token may hold (without it: none by client credentials)`)
	cmd.Flags().StringArrayVar(&allowed, "allowed-resource", nil, "a resource URI (RFC 8707) the clients registered with the token may ask tokens for (repeatable; default: any)")
	return cmd
}

func newRegistrationTokenListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the initial access tokens as JSON (id, created_at, expires_at, expired, scope, allowed_resources; never the tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			list, err := adminClient(st).ListRegistrationTokens(cmd.Context())
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), list)
		},
	}
}

func newRegistrationTokenDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete an initial access token: it registers nothing more (the clients it registered stay)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if err := adminClient(st).DeleteRegistrationToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted registration token %s\n", args[0])
			return nil
		},
	}
}
