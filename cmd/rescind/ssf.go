package main

import (
	"github.com/spf13/cobra"
)

// newSSFCommand is `rescind ssf`: the operator's view of the Shared Signals streams that
// receivers created (package ssf).
func newSSFCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "ssf", Short: "Manage Shared Signals (SSF) streams (through the running server's admin API)"}
	addSettingFlags(cmd, true, "admin_url", "admin_ca")
	streams := &cobra.Command{
		Use: "streams", Short: "List every Shared Signals stream, of every receiver, as JSON", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			list, err := adminClient(cfg).SSFStreams(cmd.Context())
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), list)
		},
	}
	stream := &cobra.Command{Use: "stream", Short: "Act on one Shared Signals stream"}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a stream, its subjects and the events it holds; print {\"stream_id\", \"deleted\"}",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			res, err := adminClient(cfg).DeleteSSFStream(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	stream.AddCommand(del)
	cmd.AddCommand(streams, stream)
	return cmd
}
