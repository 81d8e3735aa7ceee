// Package pgtest gives tests a fresh PostgreSQL database: on the server named by
// RESCIND_TEST_POSTGRES_DSN when set, else on a throwaway PostgreSQL 15 cluster it starts in a
// temp directory (as the postgres user when running as root, since the server refuses root),
// listening on a Unix socket only. Without either, tests skip, or fail when
// RESCIND_TEST_REQUIRE names postgres.
//
// A package that uses it calls Stop from TestMain after m.Run, to shut its cluster down.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rescind/rescind/internal/testenv"
)

// BinDir is where the PostgreSQL 15 server binaries are looked for.
const BinDir = "/usr/lib/postgresql/15/bin"

var (
	once     sync.Once
	adminDSN string
	startErr error
	cluster  string // data directory of the cluster we started, if any
	runAs    []string
)

// NewDatabase creates an empty database and returns its DSN; the database is dropped when the
// test ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	once.Do(start)
	if startErr != nil {
		testenv.Unavailable(tb, "postgres", startErr.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		tb.Fatalf("pgtest: connecting: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "rescind_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: creating database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, adminDSN); err == nil {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	u, err := url.Parse(adminDSN)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func start() {
	if dsn := os.Getenv("RESCIND_TEST_POSTGRES_DSN"); dsn != "" {
		adminDSN = dsn
		return
	}
	if _, err := os.Stat(filepath.Join(BinDir, "initdb")); err != nil {
		startErr = fmt.Errorf("no PostgreSQL server binaries in %s and RESCIND_TEST_POSTGRES_DSN is not set", BinDir)
		return
	}
	dir, err := os.MkdirTemp("", "rescind-pg")
	if err != nil {
		startErr = err
		return
	}
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			startErr = errors.New("running as root and there is no postgres user to run the server as")
			return
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			startErr = err
			return
		}
		runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	data := filepath.Join(dir, "data")
	if out, err := run(filepath.Join(BinDir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		startErr = fmt.Errorf("initdb: %v: %s", err, out)
		return
	}
	port := freePort()
	opts := fmt.Sprintf("-k %s -p %d -c listen_addresses='' -c fsync=off -c max_connections=200", dir, port)
	if out, err := run(filepath.Join(BinDir, "pg_ctl"), "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start"); err != nil {
		startErr = fmt.Errorf("pg_ctl start: %v: %s", err, out)
		return
	}
	cluster = data
	adminDSN = fmt.Sprintf("postgres://postgres@/postgres?host=%s&port=%d&sslmode=disable", url.QueryEscape(dir), port)
}

func run(name string, args ...string) ([]byte, error) {
	argv := append(append([]string{}, runAs...), name)
	argv = append(argv, args...)
	return exec.Command(argv[0], argv[1:]...).CombinedOutput()
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 54329
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Stop shuts down the cluster this package started, if any, and removes it.
func Stop() {
	if cluster == "" {
		return
	}
	run(filepath.Join(BinDir, "pg_ctl"), "-D", cluster, "-m", "immediate", "-w", "stop")
	os.RemoveAll(filepath.Dir(cluster))
	cluster = ""
}
