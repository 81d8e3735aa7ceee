package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartupFailures: every way `rescind serve` can fail to start ends the same way: exit
// status 1, one line on stderr naming the setting and the fix, no panic or goroutine dump, and
// nothing lost or left behind.
func TestStartupFailures(t *testing.T) {
	dir := shortTempDir(t)
	otherKey := "RESCIND_SECRETS_KEY=" + strings.Repeat("w", 40)

	// A data dir that a server created (with its key file) and left.
	used := filepath.Join(dir, "used")
	startServer(t, used, nil).stop()
	keyFile, err := os.ReadFile(filepath.Join(used, "secrets.key"))
	if err != nil {
		t.Fatal(err)
	}

	cert, key := selfSigned(t, shortTempDir(t))
	_, otherKeyFile := selfSigned(t, shortTempDir(t))

	cases := []struct {
		name string
		// setup prepares the data dir d and returns the extra arguments and environment.
		setup func(t *testing.T, d string) (args, env []string)
		want  []string // substrings of the one line on stderr
		// after is what the failed start may have done to the data dir: "absent" (nothing
		// created: it failed before touching the disk), "unchanged" (database and key file as
		// they were), or "" (a running server owns it).
		after string
	}{
		{"unreachable PostgreSQL", func(t *testing.T, d string) ([]string, []string) {
			port := closedPort(t)
			return []string{"--db", "postgres://rescind:pw@127.0.0.1:" + port + "/rescind?sslmode=disable"}, []string{otherKey}
		}, []string{"db (from --db)", "cannot open the PostgreSQL database", "127.0.0.1:", "connection refused",
			"check that PostgreSQL runs there"}, ""},
		{"PostgreSQL without a secrets key", func(t *testing.T, d string) ([]string, []string) {
			return nil, []string{"RESCIND_DB=postgres://rescind@127.0.0.1:" + closedPort(t) + "/rescind"}
		}, []string{"secrets_key", "RESCIND_SECRETS_KEY is required with PostgreSQL", "db from RESCIND_DB", "openssl rand"}, "absent"},
		{"corrupt SQLite database", func(t *testing.T, d string) ([]string, []string) {
			junk := make([]byte, 8192)
			rand.Read(junk)
			writeFile(t, filepath.Join(d, "rescind.db"), junk)
			return nil, nil
		}, []string{"data_dir (from --data-dir)", "rescind.db is not a SQLite database, or is corrupt", "restore it from a backup"}, "unchanged"},
		{"directory as database", func(t *testing.T, d string) ([]string, []string) {
			if err := os.MkdirAll(filepath.Join(d, "rescind.db"), 0o700); err != nil {
				t.Fatal(err)
			}
			return nil, nil
		}, []string{"data_dir (from --data-dir)", "rescind.db is a directory, not a database file", "move it away"}, "unchanged"},
		{"port in use", func(t *testing.T, d string) ([]string, []string) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			return []string{"--addr", ln.Addr().String()}, nil
		}, []string{"addr (from --addr)", "cannot listen on 127.0.0.1:", "address already in use", "choose another address with --addr"}, "absent"},
		{"TLS files missing", func(t *testing.T, d string) ([]string, []string) {
			return []string{"--tls-cert", filepath.Join(d, "missing.pem"), "--tls-key", key}, nil
		}, []string{"tls_cert, tls_key (from --tls-cert, --tls-key)", "cannot load the certificate", "no such file",
			"give a PEM certificate"}, "absent"},
		{"TLS key of another certificate", func(t *testing.T, d string) ([]string, []string) {
			return []string{"--tls-cert", cert, "--tls-key", otherKeyFile}, nil
		}, []string{"tls_cert, tls_key", "private key does not match public key"}, "absent"},
		{"wrong secrets key from the environment", func(t *testing.T, d string) ([]string, []string) {
			copyDataDir(t, used, d)
			return nil, []string{otherKey}
		}, []string{"secrets_key (from RESCIND_SECRETS_KEY)", "different secrets key", "give the key this database was created with"}, "unchanged"},
		{"wrong secrets key file", func(t *testing.T, d string) ([]string, []string) {
			copyDataDir(t, used, d)
			writeFile(t, filepath.Join(d, "secrets.key"), []byte(strings.Repeat("f", 32)))
			return nil, nil
		}, []string{"secrets_key (from the key file", "different secrets key"}, "unchanged"},
		{"secrets key file missing", func(t *testing.T, d string) ([]string, []string) {
			copyDataDir(t, used, d)
			os.Remove(filepath.Join(d, "secrets.key"))
			return nil, nil
		}, []string{"the database holds keys, but the data directory has no secrets.key", "copy the secrets.key that belongs with this database"}, "unchanged"},
		{"non-loopback address without issuer", func(t *testing.T, d string) ([]string, []string) {
			// Refused before listening: nothing is ever exposed on every interface.
			return []string{"--addr", "0.0.0.0:0"}, nil
		}, []string{"issuer: not set", "addr (from --addr) 0.0.0.0:0 listens beyond loopback", "set --issuer"}, "absent"},
		{"every interface without issuer", func(t *testing.T, d string) ([]string, []string) {
			return nil, []string{"RESCIND_ADDR=:0"}
		}, []string{"issuer: not set", "addr (from RESCIND_ADDR)", "set --issuer"}, "absent"},
		{"data dir in use", func(t *testing.T, d string) ([]string, []string) {
			startServer(t, d, nil)
			return nil, nil
		}, []string{"data_dir (from --data-dir)", "is in use by a running rescind server", "use another --data-dir"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(shortTempDir(t), "data")
			args, env := tc.setup(t, d)
			before := snapshot(t, d)
			if !hasArg(args, "--addr") && !hasArg(env, "RESCIND_ADDR=:0") {
				args = append(args, "--addr", freePort(t))
			}
			stderr, code := runServeFailure(t, env, append([]string{"serve", "--data-dir", d}, args...)...)
			if code != 1 {
				t.Fatalf("exit status %d, want 1; stderr:\n%s", code, stderr)
			}
			line := strings.TrimSuffix(stderr, "\n")
			if strings.Contains(line, "\n") || !strings.HasPrefix(line, "rescind: ") {
				t.Fatalf("stderr is not one line starting with \"rescind: \":\n%s", stderr)
			}
			for _, bad := range []string{"panic", "goroutine ", "pw@"} {
				if strings.Contains(line, bad) {
					t.Fatalf("stderr contains %q:\n%s", bad, line)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("stderr lacks %q:\n%s", w, line)
				}
			}
			switch after := snapshot(t, d); tc.after {
			case "absent":
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the data dir was created (%v) although the start failed before touching it", err)
				}
			case "unchanged":
				if !bytes.Equal(before["rescind.db"], after["rescind.db"]) || !bytes.Equal(before["secrets.key"], after["secrets.key"]) {
					t.Errorf("the failed start changed the database or the key file")
				}
			}
		})
	}
	// The data dir the others copied still works with its own key.
	if got, _ := os.ReadFile(filepath.Join(used, "secrets.key")); !bytes.Equal(got, keyFile) {
		t.Fatal("the original key file changed")
	}
	startServer(t, used, nil)
}

// runServeFailure runs the binary, which must exit by itself within 30 s, and returns its
// stderr and exit status.
func runServeFailure(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("rescind %s did not exit within 30 s; stderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stderr.String(), code
}

// closedPort returns a loopback port that nothing listens on.
func closedPort(t *testing.T) string {
	_, port, _ := net.SplitHostPort(freePort(t))
	return port
}

func hasArg(args []string, name string) bool {
	for _, a := range args {
		if a == name {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyDataDir copies the database and key file of a stopped server's data dir.
func copyDataDir(t *testing.T, from, to string) {
	t.Helper()
	for _, name := range []string{"rescind.db", "secrets.key"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(to, name), b)
	}
}

// snapshot reads the database and key file of a data dir, if they exist.
func snapshot(t *testing.T, d string) map[string][]byte {
	out := map[string][]byte{}
	for _, name := range []string{"rescind.db", "secrets.key"} {
		if b, err := os.ReadFile(filepath.Join(d, name)); err == nil {
			out[name] = b
		}
	}
	return out
}

// TestDBPasswordOnCommandLine: a password in --db works, but the server warns (argv is visible
// to every user) without logging the password.
func TestDBPasswordOnCommandLine(t *testing.T) {
	env, dsn := clusterEnv(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "pw-on-argv-4d1c") // the test cluster trusts, so any password works
	srv := startServer(t, filepath.Join(shortTempDir(t), "d"), env[1:], "--db", u.String())
	logText := waitForLog(t, srv, "the database password is on the command line (--db)")
	if strings.Contains(logText, "pw-on-argv-4d1c") {
		t.Fatalf("the log shows the password:\n%s", logText)
	}
}

// TestDataDirPlantedFiles: files someone could have planted while the data directory was open
// to others are refused, not adopted: a file of another user, a hard-linked file, a symlink.
func TestDataDirPlantedFiles(t *testing.T) {
	mk := func(t *testing.T) string {
		d := filepath.Join(t.TempDir(), "d")
		os.MkdirAll(d, 0o700)
		os.WriteFile(filepath.Join(d, "rescind.db"), []byte("x"), 0o600)
		return d
	}
	if err := checkDataDirFiles(mk(t)); err != nil {
		t.Fatalf("a clean data dir: %v", err)
	}
	d := mk(t)
	os.Link(filepath.Join(d, "rescind.db"), filepath.Join(t.TempDir(), "theirs"))
	if err := checkDataDirFiles(d); err == nil || !strings.Contains(err.Error(), "hard links") {
		t.Fatalf("hard-linked database: %v", err)
	}
	d = mk(t)
	os.Symlink("/etc/hostname", filepath.Join(d, "secrets.key"))
	if err := checkDataDirFiles(d); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlinked key file: %v", err)
	}
	if os.Getuid() != 0 {
		t.Log("not root: the other-owner case needs chown")
		return
	}
	d = mk(t)
	os.WriteFile(filepath.Join(d, "secrets.key"), []byte("known to the attacker, 32 bytes long"), 0o600)
	if err := os.Chown(filepath.Join(d, "secrets.key"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := checkDataDirFiles(d); err == nil || !strings.Contains(err.Error(), "belongs to user 65534") {
		t.Fatalf("a key file of another user: %v", err)
	}
}
