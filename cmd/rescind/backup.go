package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rescind/rescind/store/sqlite"
)

func newBackupCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the SQLite database to a new file",
		Long: `Write a consistent copy of the SQLite database to FILE, which must not exist (it is created
0600). With the server running, the copy is taken through it (the admin socket in --data-dir),
while it keeps serving; with no server on the data dir, directly. The copy is a SQLite database:
to restore, stop the server, put the copy in place as rescind.db in the data directory, keep the
same secrets key (RESCIND_SECRETS_KEY or the data dir's secrets.key, which the copy does not
contain), and start. With PostgreSQL, use pg_dump instead.`,
		Example: `  rescind backup rescind-$(date +%F).db
  rescind backup --data-dir /var/lib/rescind /backups/rescind-$(date +%F).db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if isPostgres(cfg.DB) {
				return fmt.Errorf("%s names PostgreSQL: back it up with pg_dump, as in: pg_dump --format=custom "+
					"--file=rescind.dump \"$RESCIND_DB\" (see the README, \"Backup and restore\")", cfg.describe("db"))
			}
			dest, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if _, err := os.Lstat(dest); err == nil {
				return fmt.Errorf("%s exists: a backup never overwrites a file; choose a new name", dest)
			}
			db := filepath.Join(cfg.DataDir, "rescind.db")
			if cfg.AdminURL == "" {
				if _, err := os.Stat(cfg.DataDir); err != nil {
					return fmt.Errorf("%s: no data directory: %w", cfg.describe("data_dir"), err)
				}
				lock, err := lockDataDir(cfg, cfg.DataDir)
				if err == nil {
					// No server runs on the data dir: copy directly, holding the lock so none starts.
					defer lock.Close()
					if _, err := os.Stat(db); err != nil {
						return fmt.Errorf("%s: no database to back up: %w", cfg.describe("data_dir"), err)
					}
					size, err := sqlite.BackupFile(cmd.Context(), db, dest)
					if err != nil {
						return fmt.Errorf("backing up %s: %w", db, err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "backed up %s to %s (%d bytes)\n", db, dest, size)
					return nil
				}
				if _, inUse := errors.AsType[*inUseError](err); !inUse {
					return err
				}
			}
			res, err := adminClient(cfg).Backup(cmd.Context(), dest)
			if err != nil {
				return fmt.Errorf("backing up through the running server: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backed up the running server's database to %s (%d bytes)\n", res.Path, res.Bytes)
			return nil
		},
	}
	addSettingFlags(cmd, false, "admin_url", "db")
	return cmd
}
