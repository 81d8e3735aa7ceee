package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rescind/rescind/admin"
)

func newUserCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage local users (through the running server's admin API)"}
	addSettingFlags(cmd, true, "admin_url", "admin_ca")
	var username, name, email string
	var fromStdin bool
	create := &cobra.Command{
		Use:     "create --username NAME --password-stdin",
		Short:   "Create a user; the password is read from stdin",
		Example: `  printf '%s' "$PASSWORD" | rescind user create --username alice --password-stdin`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if !fromStdin {
				return errors.New("--password-stdin is required: passwords are not taken on the command line")
			}
			b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4096))
			if err != nil {
				return fmt.Errorf("reading password: %w", err)
			}
			u, err := adminClient(cfg).CreateUser(cmd.Context(), admin.CreateUserRequest{Username: username,
				Password: strings.TrimRight(string(b), "\r\n"), Name: name, Email: email})
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), u)
		},
	}
	create.Flags().StringVar(&username, "username", "", "username (required)")
	create.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin")
	create.MarkFlagRequired("username")
	create.Flags().StringVar(&name, "name", "", "the person's full name (OpenID Connect name claim, scope profile)")
	create.Flags().StringVar(&email, "email", "", "the person's e-mail address (email claim, scope email; email_verified is false)")
	update := &cobra.Command{
		Use:     "update USERNAME [--name NAME] [--email ADDRESS]",
		Short:   "Change a user's name or e-mail address (an empty value clears it); print the user as JSON",
		Example: `  rescind user update alice --name "Alice Liddell" --email alice@example.com`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			var req admin.UpdateUserRequest
			if cmd.Flags().Changed("name") {
				req.Name = &name
			}
			if cmd.Flags().Changed("email") {
				req.Email = &email
			}
			u, err := adminClient(cfg).UpdateUser(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), u)
		},
	}
	update.Flags().StringVar(&name, "name", "", "the person's full name")
	update.Flags().StringVar(&email, "email", "", "the person's e-mail address")
	list := &cobra.Command{
		Use: "list", Short: "List users as JSON", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			us, err := adminClient(cfg).ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), us)
		},
	}
	del := &cobra.Command{
		Use:   "delete USERNAME",
		Short: "Delete a user: end their sessions and revoke every grant they gave; print the counts",
		Long: `Delete a user. Every sign-in session of theirs ends and every grant they gave is revoked, in
one transaction; it prints {"sessions_ended", "grants_revoked", "refresh_tokens_revoked"}. Access
tokens are not stored, so they are not counted: every access token of those grants stops working.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			res, err := adminClient(cfg).DeleteUser(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	sessions := &cobra.Command{
		Use: "sessions USERNAME", Short: "List a user's sign-in sessions as JSON", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			list, err := adminClient(cfg).UserSessions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), list)
		},
	}
	logout := &cobra.Command{
		Use:   "logout USERNAME",
		Short: "End every sign-in session of a user, on every instance; print how many",
		Long: `End every sign-in session of a user: each browser where they are signed in must sign in again,
on every instance. The apps they allowed keep their access (revoke it with revoke-all --user, or
set-password --revoke-grants).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			res, err := adminClient(cfg).LogoutUser(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	var revokeGrants, newFromStdin bool
	setPassword := &cobra.Command{
		Use:   "set-password USERNAME --password-stdin [--revoke-grants]",
		Short: "Set a user's password (read from stdin); every session of theirs ends",
		Long: `Set a user's password, read from stdin. Every sign-in session of theirs ends, on every instance;
with --revoke-grants every grant they gave is revoked too (every app must be authorized again).
It prints {"sessions_ended", "grants_revoked", "refresh_tokens_revoked"}.`,
		Example: `  printf '%s' "$NEW_PASSWORD" | rescind user set-password alice --password-stdin --revoke-grants`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if !newFromStdin {
				return errors.New("--password-stdin is required: passwords are not taken on the command line")
			}
			b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4096))
			if err != nil {
				return fmt.Errorf("reading password: %w", err)
			}
			res, err := adminClient(cfg).SetPassword(cmd.Context(), args[0], admin.SetPasswordRequest{
				Password: strings.TrimRight(string(b), "\r\n"), RevokeGrants: revokeGrants})
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	setPassword.Flags().BoolVar(&newFromStdin, "password-stdin", false, "read the password from stdin")
	setPassword.Flags().BoolVar(&revokeGrants, "revoke-grants", false, "also revoke every grant the user gave")
	cmd.AddCommand(create, update, list, del, sessions, logout, setPassword)
	return cmd
}

func newRevokeAllCommand() *cobra.Command {
	var req admin.RevokeAllRequest
	cmd := &cobra.Command{
		Use:   "revoke-all [--user NAME] [--client ID]",
		Short: "Revoke in bulk: every grant of a user, of a client, or of a user with a client",
		Long: `Revoke in bulk and report how many grants and refresh tokens were revoked. With --client alone,
every client credentials token of the client is revoked too. Access tokens are not stored, so
they are not counted: every access token of the revoked grants stops working.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if req.User == "" && req.Client == "" {
				return errors.New("name --user, --client, or both")
			}
			res, err := adminClient(cfg).RevokeAll(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	addSettingFlags(cmd, false, "admin_url", "admin_ca")
	cmd.Flags().StringVar(&req.User, "user", "", "username")
	cmd.Flags().StringVar(&req.Client, "client", "", "client id")
	return cmd
}

func newAuditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log of revocations"}
	addSettingFlags(cmd, true, "admin_url", "admin_ca")
	var limit int
	list := &cobra.Command{
		Use: "list", Short: "List audit entries, newest first, as JSON", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			es, err := adminClient(cfg).Audit(cmd.Context(), limit)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), es)
		},
	}
	list.Flags().IntVar(&limit, "limit", 100, "how many entries")
	cmd.AddCommand(list)
	return cmd
}
