// Command rescind is the Rescind OAuth 2.0 authorization server and its command-line tools.
//
//	rescind serve                      run the server (SQLite in ./rescind-data)
//	rescind client create|list|get|delete
//	rescind keys list|rotate|retire
//
// Run "rescind help" for the rest.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
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
		newUserCommand(), newRevokeAllCommand(), newAuditCommand(), newBenchCommand(), newBenchCeilingCommand())
	return root
}
