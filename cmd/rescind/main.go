// Command rescind is the Rescind OAuth 2.0 authorization server and its command-line tools.
//
//	rescind serve                       run the server (SQLite in ./rescind-data, or PostgreSQL)
//	rescind migrate                     apply pending database migrations and exit
//	rescind client create|list|get|update|rotate-secret|delete
//	rescind user create|list|delete
//	rescind keys list|rotate|retire
//	rescind registration-token create|list|delete   initial access tokens for dynamic registration
//	rescind revoke-all                  revoke every grant of a user, of a client, or both
//	rescind audit list                  the audit log of revocations
//	rescind backup                      copy the SQLite database to a new file
//	rescind token|introspect|revoke     a client's calls to any RFC 6749/7662/7009 server
//	rescind bench                       measure the server under load
//	rescind version
//
// The management commands talk to the running server's admin API (package admin), over the Unix
// socket in the data directory or, with an admin URL, over TCP. Settings come from flags,
// RESCIND_* environment variables and a config file, in that order of precedence
// (settings.go). The server's start is a list of named steps (Main.Run in serve.go), which
// end-to-end tests drive too; the wiring of the packages is there and nowhere else.
//
// Run "rescind help" for the rest.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(os.Stdin, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rescind:", err)
		os.Exit(1)
	}
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "rescind",
		Short:         "Rescind: an OAuth 2.0 authorization server whose revocations take effect",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().String("config", "", "config file (.yaml, .yml or .toml); also RESCIND_CONFIG")
	addSettingFlags(root, true, "data_dir")
	root.AddCommand(newServeCommand(), newMigrateCommand(), newClientCommand(), newKeysCommand(),
		newTokenCommand(), newIntrospectCommand(), newRevokeCommand(),
		newUserCommand(), newSSFCommand(), newRevokeAllCommand(), newAuditCommand(), newBenchCommand(), newBenchCeilingCommand(), newBenchResourceCommand(),
		newBackupCommand(), newVersionCommand(), newRegistrationTokenCommand())
	if bi, ok := debug.ReadBuildInfo(); ok {
		root.Version = moduleVersion(bi) // rescind --version
	}
	for _, c := range root.Commands() {
		suggestSubcommands(c)
	}
	return root
}

// suggestSubcommands makes a command group (client, keys, user, audit) answer a mistyped
// subcommand as the root does: "unknown command" with suggestions, whatever flags follow. Without
// it, cobra parses "client crate --name x" as the group itself and complains about --name.
func suggestSubcommands(group *cobra.Command) {
	if !group.HasSubCommands() || group.Runnable() {
		return
	}
	group.FParseErrWhitelist.UnknownFlags = true // the flags belong to the subcommand meant
	// SuggestionsFor reads this field as it is; only the root's own lookup defaults it to 2.
	group.SuggestionsMinimumDistance = 2
	group.Args = cobra.ArbitraryArgs
	group.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return errors.New(msg + "\n\nRun '" + cmd.CommandPath() + " --help' for its commands.")
	}
}
