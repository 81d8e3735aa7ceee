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
	var username string
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
				Password: strings.TrimRight(string(b), "\r\n")})
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), u)
		},
	}
	create.Flags().StringVar(&username, "username", "", "username (required)")
	create.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin")
	create.MarkFlagRequired("username")
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
		Use: "delete USERNAME", Short: "Delete a user and revoke every grant they gave", Args: cobra.ExactArgs(1),
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
	cmd.AddCommand(create, list, del)
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
