package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rescind/rescind/admin"
)

// TestBackupRestore: a backup taken through the running server, and one taken directly when no
// server runs, each restored into a new data dir with the same secrets key: the revocations in
// them still hold, what was active still works, and the client can still get tokens. A backup
// never overwrites a file.
func TestBackupRestore(t *testing.T) {
	dir := shortTempDir(t)
	data := filepath.Join(dir, "data")
	srv := startServer(t, data, nil)
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "b")), &c)
	revoked := srv.token(c.ClientID, c.ClientSecret)
	kept := srv.token(c.ClientID, c.ClientSecret)
	srv.revoke(c.ClientID, c.ClientSecret, revoked)

	online := filepath.Join(dir, "online.db")
	out := cli(t, nil, "backup", "--data-dir", data, online)
	if !strings.Contains(out, "backed up the running server's database to "+online) {
		t.Fatalf("backup printed: %s", out)
	}
	if fi, err := os.Stat(online); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	before, _ := os.ReadFile(online)
	if _, errOut, err := runCLI(nil, "backup", "--data-dir", data, online); err == nil || !strings.Contains(errOut, "exists: a backup never overwrites") {
		t.Fatalf("second backup to the same file: %v %s", err, errOut)
	}
	if after, _ := os.ReadFile(online); string(after) != string(before) {
		t.Fatal("the refused backup changed the file")
	}
	srv.stop()

	offline := filepath.Join(dir, "offline.db")
	if out := cli(t, nil, "backup", "--data-dir", data, offline); !strings.Contains(out, "backed up "+filepath.Join(data, "rescind.db")+" to "+offline) {
		t.Fatalf("direct backup printed: %s", out)
	}

	for _, backup := range []string{online, offline} {
		t.Run(filepath.Base(backup), func(t *testing.T) {
			restored := filepath.Join(shortTempDir(t), "restored")
			os.MkdirAll(restored, 0o700)
			copyFile(t, backup, filepath.Join(restored, "rescind.db"))
			copyFile(t, filepath.Join(data, "secrets.key"), filepath.Join(restored, "secrets.key"))
			r := startServer(t, restored, nil)
			if r.active(c.ClientID, c.ClientSecret, revoked) {
				t.Fatal("a token revoked before the backup is active after the restore")
			}
			if !r.active(c.ClientID, c.ClientSecret, kept) {
				t.Fatal("a token active at the backup is inactive after the restore")
			}
			if fresh := r.token(c.ClientID, c.ClientSecret); !r.active(c.ClientID, c.ClientSecret, fresh) {
				t.Fatal("the restored server cannot issue working tokens")
			}
		})
	}
}

// TestBackupRefusals: PostgreSQL is pointed to pg_dump, by the CLI and by a running server; a
// data dir without a database and the admin API over TCP are refused.
func TestBackupRefusals(t *testing.T) {
	dir := shortTempDir(t)
	if _, errOut, err := runCLI([]string{"RESCIND_DB=postgres://rescind@127.0.0.1:1/rescind"}, "backup", "--data-dir",
		filepath.Join(dir, "x"), filepath.Join(dir, "b.db")); err == nil || !strings.Contains(errOut, "pg_dump") {
		t.Fatalf("backup with PostgreSQL: %v %s", err, errOut)
	}
	os.MkdirAll(filepath.Join(dir, "empty"), 0o700)
	if _, errOut, err := runCLI(nil, "backup", "--data-dir", filepath.Join(dir, "empty"), filepath.Join(dir, "b.db")); err == nil ||
		!strings.Contains(errOut, "no database to back up") {
		t.Fatalf("backup of a data dir without database: %v %s", err, errOut)
	}

	env, _ := clusterEnv(t)
	pgData := filepath.Join(dir, "pg")
	startServer(t, pgData, env)
	// The CLI does not know the database is PostgreSQL (no RESCIND_DB): the server says so.
	_, errOut, err := runCLI(nil, "backup", "--data-dir", pgData, filepath.Join(dir, "pg.db"))
	if err == nil || !strings.Contains(errOut, "not_supported") || !strings.Contains(errOut, "pg_dump") {
		t.Fatalf("backup through a PostgreSQL server: %v %s", err, errOut)
	}

	data := filepath.Join(dir, "tcp")
	adminAddr := freePort(t)
	tokenEnv := []string{"RESCIND_ADMIN_TOKEN=" + strings.Repeat("a", 32)}
	startServer(t, data, tokenEnv, "--admin-addr", adminAddr)
	_, errOut, err = runCLI(tokenEnv, "backup", "--admin-url", "http://"+adminAddr, filepath.Join(dir, "tcp.db"))
	if err == nil || !strings.Contains(errOut, "admin socket only") {
		t.Fatalf("backup over TCP: %v %s", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "tcp.db")); err == nil {
		t.Fatal("a backup over TCP wrote a file")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
