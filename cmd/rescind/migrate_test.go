package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMigrate: migrate says what it applied, or that nothing was pending; it refuses a SQLite
// data dir in use by a server, and runs beside servers on PostgreSQL.
func TestMigrate(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		data := filepath.Join(shortTempDir(t), "d")
		first := cli(t, nil, "migrate", "--data-dir", data)
		if !strings.HasPrefix(first, "applied 0001_init.sql\n") || strings.Contains(first, "no migrations pending") {
			t.Fatalf("first migrate printed:\n%s", first)
		}
		if again := cli(t, nil, "migrate", "--data-dir", data); again != "no migrations pending\n" {
			t.Fatalf("second migrate printed:\n%s", again)
		}
		startServer(t, data, nil)
		out, errOut, err := runCLI(nil, "migrate", "--data-dir", data)
		if err == nil || out != "" || !strings.Contains(errOut, "is in use by a running rescind server") ||
			!strings.Contains(errOut, "stop it first") {
			t.Fatalf("migrate on a data dir in use: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		env, _ := clusterEnv(t)
		data := filepath.Join(shortTempDir(t), "d")
		if first := cli(t, env, "migrate", "--data-dir", data); !strings.HasPrefix(first, "applied 0001_init.sql\n") {
			t.Fatalf("first migrate printed:\n%s", first)
		}
		startServer(t, data, env)
		if again := cli(t, env, "migrate", "--data-dir", data); again != "no migrations pending\n" {
			t.Fatalf("migrate beside a running server printed:\n%s", again)
		}
	})
}
