package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/internal/accesslog"
	"github.com/rescind/rescind/internal/clientdoc"
	"github.com/rescind/rescind/internal/clientip"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/coherence"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/internal/metrics"
	"github.com/rescind/rescind/internal/outbox"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/replaylog"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/internal/unixsock"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/ssf"
	"github.com/rescind/rescind/store/postgres"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
	"github.com/rescind/rescind/web"
)

func newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authorization server",
		Long: `Run the authorization server. With no flags it listens on 127.0.0.1:8080 and keeps
everything in SQLite under ./rescind-data (created on first start). The admin API listens on
the Unix socket admin.sock in the data directory.

Every flag can also be set with a RESCIND_* environment variable (RESCIND_ADDR, RESCIND_ISSUER,
...) or in a config file (--config rescind.yaml, keys as in the flag names with underscores).
Precedence: flag, then environment, then config file, then default.

` + envOnlyHelp(),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			m := &Main{Config: cfg, LogOutput: cmd.ErrOrStderr()}
			if err := m.Run(cmd.Context()); err != nil {
				return err
			}
			<-cmd.Context().Done()
			m.Logger.Info("shutting down")
			return m.Close()
		},
	}
	addSettingFlags(cmd, false, "addr", "issuer", "log_format", "log_level", "admin_addr", "db", "poll_interval",
		"access_token_ttl", "refresh_token_ttl", "revoke_grant_with_access_token", "signing_alg", "status_list_ttl",
		"auth_failure_burst", "auth_failure_per_minute", "tls_cert", "tls_key", "insecure_http", "audit_retention", "janitor_interval",
		"access_log", "metrics_addr", "trusted_proxies", "clock_skew", "dpop_nonce", "session_idle", "session_max", "registration",
		"registration_per_hour", "client_metadata_documents", "allow_insecure_redirect", "dynamic_token_format", "scopes")
	addSettingFlags(cmd, false, "outbox_poll_interval")
	addSettingFlags(cmd, false, "outbox_allow_loopback", "logout_revokes_grants", "backchannel_logout_window")
	addSettingFlags(cmd, false, "ssf_allow_loopback_push")
	return cmd
}

// noArgs refuses arguments, and explains the usual cause of a stray one: a value given to a
// boolean flag with a space (--insecure-http yes) instead of "=" (--insecure-http=true).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unexpected argument %q: %q takes no arguments", args[0], cmd.CommandPath())
	var bools []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Value.Type() == "bool" {
			bools = append(bools, "--"+f.Name)
		}
	})
	if len(bools) > 0 {
		msg += fmt.Sprintf("; a boolean flag takes its value after \"=\", as in %s=true or %s=false", bools[0], bools[0])
	}
	return errors.New(msg)
}

func newMigrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations, say which, and exit",
		Long: `Apply pending database migrations and print each one applied, or "no migrations pending".

rescind serve applies them too when it starts, so this is needed only to migrate ahead of a
start. With SQLite the data directory must not be in use: stop the server first. With
PostgreSQL, migrate runs beside running servers (migrations take an advisory lock).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			if !isPostgres(cfg.DB) {
				lock, err := openDataDir(cfg)
				if _, inUse := errors.AsType[*inUseError](err); inUse {
					return fmt.Errorf("%s: %s is in use by a running rescind server, which applied the pending migrations "+
						"when it started: stop it first to migrate with this binary", cfg.describe("data_dir"), cfg.DataDir)
				}
				if err != nil {
					return err
				}
				defer lock.Close()
			}
			s, err := openStore(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			var applied []string
			if r, ok := s.(migrationReporter); ok {
				applied = r.Migrated()
			}
			if len(applied) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no migrations pending")
			}
			for _, name := range applied {
				fmt.Fprintln(cmd.OutOrStdout(), "applied", name)
			}
			return s.Close()
		},
	}
	addSettingFlags(cmd, false, "db")
	return cmd
}

// migrationReporter is a store that tells which migrations its Open applied (both backends).
type migrationReporter interface {
	Migrated() []string
}

// openStore opens (and migrates) the store the settings name. The data dir must exist for
// SQLite. Errors name the setting, what was tried and what to do.
func openStore(ctx context.Context, cfg Config) (rescind.Store, error) {
	if isPostgres(cfg.DB) {
		s, err := postgres.Open(ctx, cfg.DB)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot open the PostgreSQL database %s: %s: check that PostgreSQL runs there "+
				"and that the URL (host, port, database, user, password) is right", cfg.describe("db"), redactDSN(cfg.DB), oneLine(err))
		}
		return s, nil
	}
	path := filepath.Join(cfg.DataDir, "rescind.db")
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %s is a directory, not a database file: move it away (rescind creates the "+
			"database on first start) or choose another --data-dir", cfg.describe("data_dir"), path)
	}
	s, err := sqlite.Open(ctx, path)
	if errors.Is(err, sqlite.ErrNotDatabase) {
		return nil, fmt.Errorf("%s: %s is not a SQLite database, or is corrupt: restore it from a backup "+
			"(see rescind backup) or move it away to start with an empty database", cfg.describe("data_dir"), path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: cannot open the database %s: %w", cfg.describe("data_dir"), path, err)
	}
	return s, nil
}

// oneLine joins the lines of an error's text (pgx lists each connection attempt on a line of
// its own), dropping repeated ones.
func oneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !slices.Contains(parts, l) {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " ")
}

// redactDSN shows a database URL without its password.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Main is the server's wiring: what `rescind serve` runs, reusable by tests and the benchmark.
type Main struct {
	// Config is the resolved settings.
	Config Config
	// LogOutput receives the logs. If nil, os.Stderr.
	LogOutput io.Writer
	// Now returns the current time for everything the server does: tokens, revocations, the
	// janitor, caches. If nil, time.Now. Tests inject a fake clock.
	Now func() time.Time
	// HashParams are the argon2id parameters of client secrets and passwords created through the
	// admin API. If zero, secret.DefaultParams. Tests make them cheap.
	HashParams secret.Params
	// NewSigningKey generates signing keys. If nil, token.NewSigningKey. Tests reuse
	// pregenerated RSA keys (generating one takes half a second).
	NewSigningKey func(kid, alg string, created time.Time) (token.SigningKey, error)
	// Outbox tunes the outbox's dispatcher (backoff, lease, timeouts, concurrency); Run sets its
	// Store, PollInterval, ClockSkew, Metrics, Logger and Now. Zero values are the defaults.
	// Tests shorten its times.
	Outbox outbox.Config
	// Deliverers are outbox deliverers by kind, registered besides the server's own. Tests add
	// theirs.
	Deliverers map[string]outbox.Deliverer

	// Set by Run.
	Logger    *slog.Logger
	Addr      net.Addr // where the OAuth endpoints listen
	AdminAddr net.Addr // TCP admin listener, if any
	Issuer    string
	AdminSock string
	// MetricsAddr is the metrics-only listener (--metrics-addr), if any.
	MetricsAddr net.Addr

	// The parts, in the order Run makes them.
	cert           *tls.Certificate
	ln, adminLn    net.Listener
	metricsLn      net.Listener
	proxies        *clientip.Resolver
	lock           *os.File
	keyFileCreated string // the secrets key file this start created, if any
	box            *secret.Box
	store          rescind.Store
	keys           *keys.Manager
	keyring        *token.Keyring
	signer         *token.Signer
	state          *revocation.State
	janitor        revocation.JanitorConfig
	loaded         int // revocation records loaded at start
	registry       *prometheus.Registry
	metrics        *metrics.Metrics
	feed           *revocation.Feed
	committer      *revocation.Committer
	outbox         *outbox.Dispatcher
	clients        *clientreg.Registry
	limiter        *ratelimit.Limiter
	pages          *web.Server
	oauth          *oauth.Server
	admin          *admin.Server
	replayLog      *replaylog.Cache // DPoP proofs seen, with SQLite (PostgreSQL keeps them in the store)
	ssf            *ssf.Transmitter // the Shared Signals transmitter

	// handler and adminHandler are what the OAuth listener and the admin socket serve (the model
	// test calls them in process).
	handler, adminHandler http.Handler

	servers []*http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Run starts the server, one step after another; it returns once the listeners serve, and
// Close stops everything. A step that fails stops the start with an error naming the setting
// concerned, and undoes what the steps before it did (Close). Nothing is created on disk before
// the ports are bound.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	m.Logger = newLogger(m.LogOutput, m.Config.LogFormat, m.Config.LogLevel)
	if m.Now == nil {
		m.Now = time.Now
	}
	for _, step := range []func(context.Context) error{
		m.checkSettings,
		m.loadTLS,
		m.listen,
		m.prepareDataDir,
		m.openStore,
		m.openSecrets,
		m.loadKeys,
		m.loadRevocations,
		m.startCommitter,
		m.makeOutbox,
		m.buildHandlers,
		m.startServing,
		m.startBackground,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	m.Logger.Info("rescind serving", "issuer", m.Issuer, "addr", m.Addr.String(), "admin_socket", m.AdminSock,
		"data_dir", m.Config.DataDir, "revocations_loaded", m.loaded)
	if m.Config.source("db") == "--db" && hasPassword(m.Config.DB) {
		m.Logger.Warn("the database password is on the command line (--db), where every user of this machine can read it: " +
			"set RESCIND_DB instead")
	}
	return nil
}

// checkSettings refuses combinations of settings that cannot work, before anything is opened.
func (m *Main) checkSettings(context.Context) error {
	c := m.Config
	if isPostgres(c.DB) && c.SecretsKey == "" {
		return fmt.Errorf("secrets_key: RESCIND_SECRETS_KEY is required with PostgreSQL (db from %s): every instance must be "+
			"given the same key to open the keys stored in the database (a per-instance key file would split the "+
			"cluster); generate one with: openssl rand -base64 32", c.source("db"))
	}
	host, _, _ := net.SplitHostPort(c.Addr) // validated at load
	if c.Issuer == "" && !isLoopbackHost(host) {
		return fmt.Errorf("issuer: not set, and %s %s listens beyond loopback, where clients reach the server by a "+
			"name it cannot guess: set --issuer (or RESCIND_ISSUER) to the URL clients use, such as "+
			"--issuer https://auth.example.com", c.describe("addr"), c.Addr)
	}
	if err := checkAdminTransport(c.AdminAddr, c.TLSCert != "", c.InsecureHTTP); err != nil {
		return err
	}
	var err error
	if m.proxies, err = clientip.Parse(c.TrustedProxies); err != nil {
		return fmt.Errorf("%s: %w", c.describe("trusted_proxies"), err)
	}
	if c.Issuer != "" {
		return checkIssuerTransport(c.Issuer, c.InsecureHTTP)
	}
	return nil
}

// isLoopbackHost reports whether a listening host is on loopback only. An empty host listens on
// every interface.
func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadTLS loads the certificate and key, if HTTPS is configured.
func (m *Main) loadTLS(context.Context) error {
	if m.Config.TLSCert == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(m.Config.TLSCert, m.Config.TLSKey)
	if err != nil {
		return fmt.Errorf("tls_cert, tls_key (from %s, %s): cannot load the certificate %s with the key %s: %w: "+
			"give a PEM certificate (chain) and its PEM private key", m.Config.source("tls_cert"), m.Config.source("tls_key"),
			m.Config.TLSCert, m.Config.TLSKey, err)
	}
	m.cert = &cert
	return nil
}

// listen binds the OAuth address (and the TCP admin address, if any) and settles the issuer.
func (m *Main) listen(context.Context) error {
	var err error
	if m.ln, err = listenTCP(m.Config, "addr", m.Config.Addr); err != nil {
		return err
	}
	m.Addr = m.ln.Addr()
	if m.Config.AdminAddr != "" {
		if m.adminLn, err = listenTCP(m.Config, "admin_addr", m.Config.AdminAddr); err != nil {
			return err
		}
		m.AdminAddr = m.adminLn.Addr()
	}
	if m.Config.MetricsAddr != "" {
		if m.metricsLn, err = listenTCP(m.Config, "metrics_addr", m.Config.MetricsAddr); err != nil {
			return err
		}
		m.MetricsAddr = m.metricsLn.Addr()
	}
	m.Issuer = m.Config.Issuer
	if m.Issuer == "" {
		m.Issuer = deriveIssuer(m.Addr.(*net.TCPAddr), m.cert != nil)
	}
	if m.cert != nil {
		conf := &tls.Config{Certificates: []tls.Certificate{*m.cert}, MinVersion: tls.VersionTLS12}
		m.ln = tls.NewListener(m.ln, conf)
		if m.adminLn != nil {
			m.adminLn = tls.NewListener(m.adminLn, conf) // the admin token never crosses the network in clear
		}
	}
	return checkIssuerTransport(m.Issuer, m.Config.InsecureHTTP)
}

// listenTCP binds addr, the value of setting key, and explains the usual failures.
func listenTCP(cfg Config, key, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	flag := "--" + lookupSetting(key).flag
	fix := "choose another address with " + flag
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		fix = "another process (perhaps another rescind) uses this port: stop it, or " + fix
	case errors.Is(err, syscall.EACCES):
		fix = "ports below 1024 need privileges: " + fix
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		fix = "no network interface of this machine has this address: " + fix
	}
	return nil, fmt.Errorf("%s: cannot listen on %s: %w: %s", cfg.describe(key), addr, errors.Unwrap(err), fix)
}

// prepareDataDir creates the data directory and locks it.
func (m *Main) prepareDataDir(context.Context) error {
	if fi, err := os.Stat(m.Config.DataDir); err == nil && fi.Mode().Perm() != 0o700 && fi.Mode()&os.ModeSticky == 0 {
		m.Logger.Warn("security: tightening the data directory's permissions to 0700", "data_dir", m.Config.DataDir,
			"was", fi.Mode().Perm().String())
	}
	var err error
	m.lock, err = openDataDir(m.Config)
	return err
}

// openDataDir creates the data directory (0700), makes it the server user's alone even if it
// existed with looser permissions (it holds the database, the secrets key and the admin socket),
// and locks it, so that two processes never share one SQLite database with two separate
// in-memory revocation states. Closing the file releases the lock.
func openDataDir(cfg Config) (*os.File, error) {
	// The database, key file and socket are for the server's user alone.
	syscall.Umask(0o077)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: cannot create the data directory: %w: choose a writable directory with --data-dir",
			cfg.describe("data_dir"), err)
	}
	if fi, err := os.Stat(cfg.DataDir); err == nil && fi.Mode()&os.ModeSticky != 0 {
		// A shared directory such as /tmp: making it 0700 would break it for everyone else.
		return nil, fmt.Errorf("%s: %s is a shared directory (sticky bit, like /tmp): give rescind a directory of its own",
			cfg.describe("data_dir"), cfg.DataDir)
	}
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: cannot restrict %s to its owner (0700): %w", cfg.describe("data_dir"), cfg.DataDir, err)
	}
	if err := checkDataDirFiles(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.describe("data_dir"), err)
	}
	return lockDataDir(cfg, cfg.DataDir)
}

// checkDataDirFiles refuses a data directory, or a file in it, that belongs to another user, and
// a file with more than one link: while the directory was open to others, someone could have
// planted a secrets.key they know, or hard-linked the database to a file of theirs, and would
// keep reading it after the directory is made 0700.
func checkDataDirFiles(dir string) error {
	uid := uint32(os.Getuid())
	owned := func(fi os.FileInfo) (uint32, uint64, bool) {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return 0, 0, false
		}
		return st.Uid, uint64(st.Nlink), true
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if o, _, ok := owned(fi); ok && o != uid {
		return fmt.Errorf("%s belongs to user %d, not to the user rescind runs as (%d): give rescind a directory of its own", dir, o, uid)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range entries {
		info, err := os.Lstat(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // gone meanwhile
		}
		o, links, ok := owned(info)
		switch {
		case !ok:
		case o != uid:
			return fmt.Errorf("%s belongs to user %d, not to the user rescind runs as (%d): someone else put it in the data "+
				"directory; remove it, and if it is secrets.key or a database file, restore them from a backup you trust",
				filepath.Join(dir, e.Name()), o, uid)
		case info.Mode().IsRegular() && links > 1:
			return fmt.Errorf("%s has %d hard links: another name elsewhere would let its holder read it whatever the data "+
				"directory's permissions; copy the file to a fresh one (cp, then mv over it) and start again",
				filepath.Join(dir, e.Name()), links)
		case info.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link: the data directory must hold its files itself", filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// openSecrets opens the box that seals stored keys: RESCIND_SECRETS_KEY, or the key file in the
// data dir (created on first start).
func (m *Main) openSecrets(context.Context) error {
	material := []byte(m.Config.SecretsKey)
	if m.Config.SecretsKey == "" {
		path := filepath.Join(m.Config.DataDir, "secrets.key")
		_, statErr := os.Stat(path)
		var err error
		if material, err = secret.LoadOrCreateKeyFile(path); err != nil {
			return fmt.Errorf("secrets_key (from the key file %s): %w", path, err)
		}
		if errors.Is(statErr, os.ErrNotExist) {
			m.keyFileCreated = path
		}
	}
	var err error
	m.box, err = secret.NewBox(material)
	return err
}

// openStore opens and migrates the database.
func (m *Main) openStore(ctx context.Context) error {
	var err error
	m.store, err = openStore(ctx, m.Config)
	return err
}

// loadKeys loads the sealing and signing keys (creating the first ones in a new database).
func (m *Main) loadKeys(ctx context.Context) error {
	var err error
	m.keys, err = keys.Open(ctx, keys.Config{Store: m.store, Box: m.box, SigningAlg: m.Config.SigningAlg,
		RetireAfter: admin.MaxTokenTTL + time.Hour, OnRetire: m.keyRetired, Now: m.Now, Logger: m.Logger,
		NewSigningKey: m.NewSigningKey,
		// New signing keys wait out every cached JWKS without them (keys.ActivationDelay).
		ClockSkew: m.Config.ClockSkew, PollInterval: m.Config.PollInterval})
	if err != nil {
		return m.keyError(err)
	}
	m.keyring, m.signer = m.keys.Keyring(), m.keys.Signer()
	return nil
}

// keyRetired applies the revocation record of a key retired through this instance to the
// in-memory state (the committer is running by the time any key can be retired).
func (m *Main) keyRetired(r rescind.Revocation) { m.committer.Apply(r) }

// keyError explains a failure to open the stored keys: almost always the wrong secrets key.
func (m *Main) keyError(err error) error {
	if !errors.Is(err, keys.ErrSecretsKeyMismatch) {
		return err
	}
	if m.keyFileCreated != "" {
		// This start made a fresh key file for a database that already has keys: a restore or
		// a move without the key file. Take the new file away again, so the right one can be
		// copied in.
		os.Remove(m.keyFileCreated)
		return fmt.Errorf("secrets_key: the database holds keys, but the data directory has no secrets.key: copy the "+
			"secrets.key that belongs with this database to %s, or set RESCIND_SECRETS_KEY to its key", m.keyFileCreated)
	}
	from := m.Config.source("secrets_key")
	if m.Config.SecretsKey == "" {
		from = "the key file " + filepath.Join(m.Config.DataDir, "secrets.key")
	}
	return fmt.Errorf("secrets_key (from %s): the stored keys were encrypted under a different secrets key: give the "+
		"key this database was created with (RESCIND_SECRETS_KEY, or the secrets.key file of its data directory)", from)
}

// loadRevocations loads every revocation still in force into memory: those whose expiry is
// less than the clock skew ago too, as the janitor keeps them. A million records take about a
// second (Preload reads them in parallel ranges).
func (m *Main) loadRevocations(ctx context.Context) error {
	m.state = revocation.NewState()
	var err error
	m.loaded, err = m.state.Preload(ctx, m.store, m.Now().Add(-m.Config.ClockSkew))
	return err
}

// startCommitter starts the group committer of revocations, with what it tells of each commit
// (the metrics and the event streams) made before it.
func (m *Main) startCommitter(context.Context) error {
	m.registry = prometheus.NewRegistry()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.metrics = metrics.New(m.registry, m.revocationRecords)
	// The event streams deliver every record still in force: until its expiry plus the clock
	// skew, as the janitor keeps it (a resource server whose clock is behind still needs it).
	m.feed = oauth.NewFeed(m.store, m.Logger, func() time.Time { return m.Now().Add(-m.Config.ClockSkew) })
	m.committer = revocation.NewCommitter(wakingStore{Store: m.store, wake: m.wakeOutbox}, m.state, m.committed)
	return nil
}

// makeOutbox makes the dispatcher of the durable outbox, which startBackground runs. The
// features whose changes cause messages register their deliverers with m.outbox.Handle in
// buildHandlers, and wake it (m.outbox.Wake) once such a change has committed.
func (m *Main) makeOutbox(context.Context) error {
	cfg := m.Outbox
	cfg.Store, cfg.PollInterval, cfg.ClockSkew = m.store, m.Config.OutboxPollInterval, m.Config.ClockSkew
	cfg.Metrics, cfg.Logger, cfg.Now = metrics.NewOutbox(m.registry), m.Logger, m.Now
	// SQLite: one server per database (the data directory's lock), so every lease found at
	// start is this instance's from before a crash.
	cfg.Exclusive = !isPostgres(m.Config.DB)
	var err error
	if m.outbox, err = outbox.New(cfg); err != nil {
		return err
	}
	for kind, d := range m.Deliverers {
		m.outbox.Handle(kind, d)
	}
	return nil
}

// revocationRecords is the metric of the records held in memory.
func (m *Main) revocationRecords() float64 { return float64(m.state.Len()) }

// committed is told of each group commit of n revocation records.
func (m *Main) committed(n int) {
	m.metrics.Committed(n)
	m.feed.Notify()
}

// buildHandlers makes the pages, the OAuth endpoints and the admin API.
func (m *Main) buildHandlers(context.Context) error {
	c := m.Config
	var err error
	// The handlers' store wakes the outbox after a change that wrote messages (wake.go).
	store := rescind.Store(wakingStore{Store: m.store, wake: m.wakeOutbox})
	// One bound on the argon2 checks of the whole process (client secrets and passwords alike):
	// as many at once as there are cores, a short queue, and 503 beyond it.
	gate := secret.NewGate(secret.GateConfig{Running: max(1, runtime.GOMAXPROCS(0)), Params: m.HashParams})
	if m.clients, err = clientreg.New(clientreg.Config{Store: store, Now: m.Now, Gate: gate}); err != nil {
		return err
	}
	m.limiter = ratelimit.New(ratelimit.Config{Burst: c.AuthFailureBurst, PerMinute: c.AuthFailurePerMinute})
	m.pages, err = web.New(web.Config{Issuer: m.Issuer, Store: store, Clients: m.clients, Committer: m.committer, Box: m.box,
		Logger: m.Logger, Limiter: m.limiter, Now: m.Now, Gate: gate, SessionIdle: c.SessionIdle, SessionMax: c.SessionMax,
		UserLimiter: ratelimit.New(ratelimit.Config{Burst: c.LoginFailureBurstPerUser, PerHour: c.LoginFailuresPerUserHour}),
		// Each sign-in may end a session whose record every instance keeps until its idle
		// expiry: 30 at once, then 120 an hour, per person.
		SignInLimiter: ratelimit.New(ratelimit.Config{Burst: 30, PerHour: 120})})
	if err != nil {
		return err
	}
	verifier, err := m.dpopVerifier()
	if err != nil {
		return err
	}
	routes, err := m.makeSSF()
	if err != nil {
		return err
	}
	m.oauth, err = oauth.New(oauth.Config{
		Issuer: m.Issuer, Clients: m.clients, Keys: m.keyring, Revoked: m.state, Committer: m.committer, Metrics: m.metrics,
		Store: store, Pages: m.pages, AccessTokenTTL: c.AccessTokenTTL, RefreshTokenTTL: c.RefreshTokenTTL,
		RevokeGrantWithAccessToken: c.RevokeGrantWithAccessToken, Ready: m.store.Ping, Logger: m.Logger,
		RefreshKeys: m.keys.RefreshSealKey, RefreshSigningKeys: m.keys.RefreshSigningKey, Signer: m.signer, StatusListTTL: c.StatusListTTL,
		Statuses: &statuslist.Allocator{Recorder: m.store, MaxTokenTTL: admin.MaxTokenTTL, Now: m.Now},
		Feed:     m.feed, Limiter: m.limiter, Now: m.Now,
		DPoP: verifier, DPoPNonce: c.DPoPNonce,
		// ID tokens and logout tokens: each client's algorithm, RS256 by default.
		IDSigner: oauth.AlgSigner{Sign: m.keys.SignWith, Algs: []string{rescind.AlgEdDSA, rescind.AlgES256, rescind.AlgRS256},
			// CanSign makes a chain with no live key again (keys.Manager.Ready).
			CanSign: m.keys.Ready}, Routes: routes,
		// Dynamic registration and metadata documents (issue 16); a client deletes itself by the
		// admin API's one path of client deletion.
		Registration: c.Registration, HashParams: m.HashParams, ScopesSupported: strings.Fields(c.Scopes),
		RegistrationLimiter: ratelimit.New(ratelimit.Config{Burst: c.RegistrationPerHour, PerHour: c.RegistrationPerHour, Now: m.Now}),
		DeleteClient: func(ctx context.Context, id, actor, reason string) error {
			return m.admin.DeleteClient(ctx, id, actor, reason)
		},
		ClientDocuments:       m.clientDocuments(),
		AllowInsecureRedirect: c.AllowInsecureRedirect, SelfRegisteredTokenFormat: c.DynamicTokenFormat,
	})
	if err != nil {
		return err
	}
	// Back-channel logout (OpenID Connect): every end of sessions, through the Committer, writes
	// a logout token message per relying party in its own transaction; the dispatcher delivers.
	m.outbox.Handle(oauth.KindBackchannelLogout, outbox.NewHTTPDeliverer(outbox.HTTPConfig{Prepare: m.oauth.PrepareLogoutToken,
		AllowLoopback: c.OutboxAllowLoopback, Now: m.Now}))
	m.committer.SetSessionEnd(rescind.SessionEnd{Notices: []rescind.SessionNotices{oauth.LogoutNotices(c.BackchannelLogoutWindow)},
		RevokeGrants: c.LogoutRevokesGrants}, m.outbox.Wake)
	acfg := admin.Config{Store: store, Clients: m.clients, Revoked: m.state, Committer: m.committer, AllowLoopbackReceivers: c.OutboxAllowLoopback,
		Keys: m.keys, Signer: m.signer, TokenTTL: m.oauth.TokenTTL,
		Gatherer: m.registry, Token: c.AdminToken, Logger: m.Logger, Now: m.Now, HashParams: m.HashParams,
		Limiter: ratelimit.New(ratelimit.Config{Burst: c.AuthFailureBurst, PerMinute: c.AuthFailurePerMinute})}
	acfg.ClockSkew = c.ClockSkew // client cut-offs are placed past it
	if b, ok := m.store.(backuper); ok {
		acfg.Backup = b.Backup
	}
	m.admin = admin.New(acfg)
	return nil
}

// clientDocuments returns the resolver of Client ID Metadata Documents, if they are on: fetched
// from public addresses only, but in development (--allow-insecure-redirect) from loopback too.
func (m *Main) clientDocuments() *clientdoc.Resolver {
	if !m.Config.ClientMetadataDocuments {
		return nil
	}
	return clientdoc.New(clientdoc.Config{AllowLoopback: m.Config.AllowInsecureRedirect, Now: m.Now})
}

// makeSSF makes the Shared Signals transmitter (package ssf), registers its outbox deliverers
// and its metrics, and returns its endpoints for the route table. Its receivers authenticate
// with access tokens of the OAuth server, made next (m.oauth is set by the time a request
// comes).
func (m *Main) makeSSF() ([]oauth.Route, error) {
	var err error
	m.ssf, err = ssf.New(ssf.Config{Issuer: m.Issuer, Store: m.store, Box: m.box, JWKSURI: m.Issuer + "/.well-known/jwks.json",
		Sign: m.signSET, Wake: m.outbox.Wake, AllowLoopbackPush: m.Config.SSFAllowLoopbackPush, Logger: m.Logger, Now: m.Now,
		KeyVerifies: m.keys.Signer().Verifies,
		Authenticate: func(ctx context.Context, text string) (ssf.Token, error) {
			b, err := m.oauth.Bearer(ctx, text)
			return ssf.Token{ClientID: b.ClientID, Scopes: strings.Fields(b.Scope), ClientCredentials: b.ClientCredentials,
				Audience: b.Audience}, err
		}})
	if err != nil {
		return nil, err
	}
	m.outbox.Handle(rescind.OutboxSignal, outbox.DelivererFunc(m.ssf.DeliverSignal))
	m.outbox.Handle(rescind.OutboxSSFPush, m.ssf.PushDeliverer())
	ssf.RegisterMetrics(m.registry, m.store)
	var routes []oauth.Route
	for _, r := range m.ssf.Routes() {
		routes = append(routes, oauth.Route(r))
	}
	return routes, nil
}

// signSET signs a Security Event Token: the one seam between the transmitter and the signing
// keys. SETs are signed RS256 (the CAEP interoperability profile asks for RS256 with a key of at
// least 2048 bits; ours are 3072), with the RS256 chain's key, made at the first start
// (keys.Open) and published in the JWKS beside the others from then on.
func (m *Main) signSET(claims any, typ string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return m.keys.SignWith(ctx, token.AlgRS256, claims, typ)
}

// dpopVerifier makes the checker of DPoP proofs at the token endpoint (RFC 9449). Its nonces are
// derived from the secrets key, so every instance issues and accepts the same ones (§8). Its
// replay cache is the store with PostgreSQL, shared by every instance (§11.1); with SQLite (one
// instance per data dir) it is memory backed by a log in the data dir, so a proof accepted just
// before a restart or crash is refused after it.
func (m *Main) dpopVerifier() (*dpop.Verifier, error) {
	key, err := m.box.DeriveKey("dpop nonce v1", 32)
	if err != nil {
		return nil, err
	}
	nonces, err := dpop.NewNonces(key, 0)
	if err != nil {
		return nil, err
	}
	var replay dpop.ReplayCache = &oauth.StoreReplay{Store: m.store}
	if !isPostgres(m.Config.DB) {
		if m.replayLog, err = replaylog.Open(m.Config.DataDir, nil, 0); err != nil {
			return nil, fmt.Errorf("%s: cannot open the DPoP replay log: %w", m.Config.describe("data_dir"), err)
		}
		replay = m.replayLog
	}
	return &dpop.Verifier{Replay: replay, Nonces: nonces}, nil
}

// The pages of package web are the browser-facing half of the OAuth route table.
var _ oauth.Pages = (*web.Server)(nil)

// backuper is a store that copies itself to a file while in use (SQLite).
type backuper interface {
	Backup(ctx context.Context, path string) (int64, error)
}

// startServing serves the admin socket, the TCP admin listener and, last, the OAuth endpoints:
// once /readyz answers, the admin API is there too.
func (m *Main) startServing(context.Context) error {
	m.AdminSock = filepath.Join(m.Config.DataDir, "admin.sock")
	sock, err := unixsock.Listen(m.AdminSock)
	if err != nil {
		return fmt.Errorf("%s: cannot open the admin socket %s: %w", m.Config.describe("data_dir"), m.AdminSock, err)
	}
	m.adminHandler = m.admin.Handler(false)
	m.serve(sock, m.adminHandler)
	if m.adminLn != nil {
		// Behind a proxy, the admin API's failure limits apply to the client's address too.
		m.serve(m.adminLn, m.proxies.Middleware(m.admin.Handler(true)))
		m.adminLn = nil // the server owns it now
	}
	if m.metricsLn != nil {
		m.serve(m.metricsLn, admin.MetricsHandler(m.registry))
		m.metricsLn = nil
	}
	h := m.oauth.Handler()
	if m.Config.AccessLog {
		h = accesslog.Handler(m.Logger, h)
	}
	// The client address behind trusted proxies, for rate limits and logs (the access log too).
	h = m.proxies.Middleware(h)
	m.handler = h
	public := m.serve(m.ln, h)
	public.RegisterOnShutdown(m.feed.Close)
	m.ln = nil
	return nil
}

// startBackground starts the janitor, the outbox's dispatcher and, with a shared store, the
// coherence loop that learns of other instances' changes.
func (m *Main) startBackground(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	// The janitor keeps records the clock skew past their expiry (see internal/revocation).
	m.janitor = revocation.JanitorConfig{Store: m.store, State: m.state,
		Interval: m.Config.JanitorInterval, AuditRetention: m.Config.AuditRetention, Grace: m.Config.ClockSkew,
		OnDeleted: m.metrics.JanitorDeleted, Logger: m.Logger, Now: m.Now,
		ExpireSessions: func(ctx context.Context, now time.Time) (int, error) {
			return m.committer.ExpireSessions(ctx, now, 500)
		}}
	m.goRun(ctx, m.runJanitor)
	m.goRun(ctx, m.outbox.Run)
	m.goRun(ctx, func(ctx context.Context) { m.ssf.RunJanitor(ctx, m.Config.JanitorInterval) })
	if w, ok := m.store.(rescind.Watcher); ok {
		m.goRun(ctx, func(ctx context.Context) { m.runCoherence(ctx, w) })
	}
	return nil
}

// goRun runs f in a goroutine that Close waits for.
func (m *Main) goRun(ctx context.Context, f func(context.Context)) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f(ctx)
	}()
}

// runJanitor deletes expired records until ctx ends.
func (m *Main) runJanitor(ctx context.Context) {
	revocation.RunJanitor(ctx, m.janitor)
}

// runCoherence applies other instances' changes, by notification and by a fallback poll, until
// ctx ends.
func (m *Main) runCoherence(ctx context.Context, w rescind.Watcher) {
	coherence.Run(ctx, coherence.Config{Store: m.store, Watcher: w, State: m.state, Clients: m.clients,
		RefreshKeys: m.refreshKeys, OnRevoked: m.feed.Notify, PollInterval: m.Config.PollInterval, ClockSkew: m.Config.ClockSkew,
		Logger: m.Logger, Now: m.Now})
}

// refreshKeys reloads the keys another instance may have added, retired or brought forward.
func (m *Main) refreshKeys(ctx context.Context) {
	if err := m.keys.Refresh(ctx); err != nil && ctx.Err() == nil {
		m.Logger.Warn("refreshing the keys", "err", err)
	}
}

// serve serves h on ln until Close, and returns the http.Server.
func (m *Main) serve(ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelDebug),
	}
	m.servers = append(m.servers, srv)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("serving", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return srv
}

// Close stops accepting requests, lets those in flight finish (up to 10 s), commits queued
// revocations and closes the store. It undoes a Run that stopped part way.
func (m *Main) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, ln := range []net.Listener{m.ln, m.adminLn, m.metricsLn} { // bound but not yet served
		if ln != nil {
			ln.Close()
		}
	}
	for _, s := range m.servers {
		s.Shutdown(ctx)
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if m.committer != nil {
		m.committer.Close()
	}
	if m.replayLog != nil {
		m.replayLog.Close()
	}
	var err error
	if m.store != nil {
		err = m.store.Close()
	}
	if m.AdminSock != "" {
		os.Remove(m.AdminSock)
	}
	if m.lock != nil {
		m.lock.Close()
	}
	return err
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var lv slog.Level
	lv.UnmarshalText([]byte(level)) // validated at load
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// deriveIssuer makes the default issuer from the listening address.
func deriveIssuer(a *net.TCPAddr, https bool) string {
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "localhost"
	}
	scheme := "http://"
	if https {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, fmt.Sprint(a.Port))
}

// checkIssuerTransport refuses a plain-HTTP issuer off loopback: tokens and secrets would cross
// the network in clear. insecure overrides.
func checkIssuerTransport(issuer string, insecure bool) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "http" || insecure {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("issuer: %s is plain HTTP on a host that is not loopback: serve HTTPS (--tls-cert and --tls-key, "+
		"or TLS at a proxy with an https issuer), or pass --insecure-http if you accept tokens in clear", issuer)
}

// checkAdminTransport refuses a plain-HTTP admin listener off loopback: the admin token would
// cross the network in clear. With TLS the listener is HTTPS; insecure overrides.
func checkAdminTransport(addr string, tlsOn, insecure bool) error {
	if addr == "" || tlsOn || insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil // validated at load
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("admin_addr: %s is not loopback and the server has no TLS: the admin token would cross the network "+
		"in clear; serve HTTPS (--tls-cert and --tls-key, which the admin listener uses too), listen on loopback, or pass --insecure-http", addr)
}

// inUseError is returned by lockDataDir when another process holds the lock.
type inUseError struct{ msg string }

func (e *inUseError) Error() string { return e.msg }

// lockDataDir takes an exclusive lock on the data directory.
func lockDataDir(cfg Config, dir string) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot open the lock file: %w", cfg.describe("data_dir"), err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, &inUseError{fmt.Sprintf("%s: %s is in use by a running rescind server (it holds %s): stop it, "+
			"or use another --data-dir", cfg.describe("data_dir"), dir, path)}
	}
	return f, nil
}

// adminClient returns the admin API client for CLI commands: --admin-url if set, else the
// socket in the data directory.
func adminClient(cfg Config) *admin.Client {
	if cfg.AdminURL != "" {
		hc := &http.Client{Timeout: time.Minute}
		if cfg.AdminCA != "" {
			// validAdminCA checked the file at load; trust its certificates for the admin API.
			pool, _ := x509.SystemCertPool()
			if pool == nil {
				pool = x509.NewCertPool()
			}
			if pem, err := os.ReadFile(cfg.AdminCA); err == nil {
				pool.AppendCertsFromPEM(pem)
			}
			hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
		}
		return &admin.Client{BaseURL: strings.TrimSuffix(cfg.AdminURL, "/"), Token: cfg.AdminToken, HTTP: hc}
	}
	return admin.NewUnixClient(filepath.Join(cfg.DataDir, "admin.sock"))
}
