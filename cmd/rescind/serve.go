package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/coherence"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/internal/metrics"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/internal/unixsock"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/store/postgres"
	"github.com/rescind/rescind/store/sqlite"
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
...) or in a config file (--config rescind.yaml, keys as in the flag names with underscores).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			m := &Main{Settings: st, LogOutput: cmd.ErrOrStderr()}
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
		"auth_failure_burst", "auth_failure_per_minute", "tls_cert", "tls_key", "insecure_http", "audit_retention", "janitor_interval")
	return cmd
}

func newMigrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := loadSettings(cmd)
			if err != nil {
				return err
			}
			s, err := openStore(cmd.Context(), st)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "migrations applied")
			return s.Close()
		},
	}
	addSettingFlags(cmd, false, "db")
	return cmd
}

// openStore opens (and migrates) the store the settings name.
func openStore(ctx context.Context, st settings) (rescind.Store, error) {
	if db := st["db"]; isPostgres(db) {
		return postgres.Open(ctx, db)
	}
	if err := os.MkdirAll(st["data_dir"], 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	return sqlite.Open(ctx, filepath.Join(st["data_dir"], "rescind.db"))
}

// Main is the server's wiring: what `rescind serve` runs, reusable by tests and the benchmark.
type Main struct {
	// Settings are the resolved settings (see settingsTable).
	Settings settings
	// LogOutput receives the logs. If nil, os.Stderr.
	LogOutput io.Writer

	// Set by Run.
	Logger    *slog.Logger
	Addr      net.Addr // where the OAuth endpoints listen
	AdminAddr net.Addr // TCP admin listener, if any
	Issuer    string
	AdminSock string

	store     rescind.Store
	lock      *os.File
	committer *revocation.Committer
	servers   []*http.Server
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// Run opens the store, loads keys and revocation state and starts serving. It returns once the
// listeners are open; Close stops everything.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	m.Logger = newLogger(m.LogOutput, m.Settings["log_format"], m.Settings["log_level"])
	if isPostgres(m.Settings["db"]) && m.Settings["secrets_key"] == "" {
		return errors.New("RESCIND_SECRETS_KEY is required with PostgreSQL: every instance must be given the same key " +
			"to open the keys stored in the database (a per-instance key file would split the cluster)")
	}
	dataDir := m.Settings["data_dir"]
	// The database, key file and socket are for the server's user alone.
	syscall.Umask(0o077)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	if m.lock, err = lockDataDir(dataDir); err != nil {
		return err
	}
	box, err := secretsBox(m.Settings["secrets_key"], dataDir)
	if err != nil {
		return err
	}
	if m.store, err = openStore(ctx, m.Settings); err != nil {
		return err
	}
	now := time.Now()
	km, err := keys.Open(ctx, keys.Config{Store: m.store, Box: box, SigningAlg: m.Settings["signing_alg"],
		RetireAfter: admin.MaxTokenTTL + time.Hour, OnRetire: func(r rescind.Revocation) { m.committer.Apply(r) }})
	if err != nil {
		return err
	}
	keyring, signer := km.Keyring(), km.Signer()
	state := revocation.NewState()
	n, err := state.Load(ctx, m.store, now, nil)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	met := metrics.New(reg, func() float64 { return float64(state.Len()) })
	var srv *oauth.Server
	m.committer = revocation.NewCommitter(m.store, state, func(n int) {
		met.Committed(n)
		srv.NotifyRevocations() // srv is set before the first request can commit
	})
	clients, err := clientreg.New(clientreg.Config{Store: m.store})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", m.Settings["addr"])
	if err != nil {
		return fmt.Errorf("listening on %s: %w", m.Settings["addr"], err)
	}
	m.Addr = ln.Addr()
	tlsOn := m.Settings["tls_cert"] != ""
	m.Issuer = m.Settings["issuer"]
	if m.Issuer == "" {
		m.Issuer = deriveIssuer(m.Addr.(*net.TCPAddr), tlsOn)
	}
	if err := checkIssuerTransport(m.Issuer, m.Settings["insecure_http"] == "true"); err != nil {
		ln.Close()
		return err
	}
	burst, _ := strconv.Atoi(m.Settings["auth_failure_burst"])
	perMinute, _ := strconv.Atoi(m.Settings["auth_failure_per_minute"])
	limiter := ratelimit.New(ratelimit.Config{Burst: burst, PerMinute: perMinute})
	pages, err := web.New(web.Config{Issuer: m.Issuer, Store: m.store, Clients: clients, Committer: m.committer, Box: box,
		Logger: m.Logger, Limiter: limiter, GrantRecordTTL: func(clientID string) time.Duration {
			c, _ := clients.Get(context.Background(), clientID) // a deleted client: the default lifetime
			return srv.GrantRecordTTL(c.TokenTTL)
		}})
	if err != nil {
		ln.Close()
		return err
	}
	srv, err = oauth.New(oauth.Config{
		Issuer: m.Issuer, Clients: clients, Keys: keyring, Revoked: state, Committer: m.committer, Metrics: met, Store: m.store,
		Pages: pages.Handler(), AccessTokenTTL: m.Settings.duration("access_token_ttl"),
		RefreshTokenTTL: m.Settings.duration("refresh_token_ttl"), RevokeGrantWithAccessToken: m.Settings["revoke_grant_with_access_token"] == "true",
		Ready: m.store.Ping, Logger: m.Logger, RefreshKeys: km.RefreshSealKey, RefreshSigningKeys: km.RefreshSigningKey,
		Signer: signer, Statuses: &statuslist.Allocator{}, StatusListTTL: m.Settings.duration("status_list_ttl"),
		Limiter: limiter,
	})
	if err != nil {
		ln.Close()
		return err
	}
	adm := admin.New(admin.Config{Store: m.store, Clients: clients, Revoked: state, Committer: m.committer, Keys: km, Signer: signer,
		TokenTTL: srv.TokenTTL, GrantRecordTTL: srv.GrantRecordTTL, Gatherer: reg, Token: m.Settings["admin_token"], Logger: m.Logger})

	if tlsOn {
		cert, err := tls.LoadX509KeyPair(m.Settings["tls_cert"], m.Settings["tls_key"])
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading TLS certificate: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	m.serve(ln, srv.Handler())
	m.servers[len(m.servers)-1].RegisterOnShutdown(srv.CloseStreams)
	m.AdminSock = filepath.Join(dataDir, "admin.sock")
	sock, err := unixsock.Listen(m.AdminSock)
	if err != nil {
		return err
	}
	m.serve(sock, adm.Handler(false))
	if a := m.Settings["admin_addr"]; a != "" {
		aln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("listening on admin address %s: %w", a, err)
		}
		m.AdminAddr = aln.Addr()
		m.serve(aln, adm.Handler(true))
	}

	jctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		revocation.RunJanitor(jctx, revocation.JanitorConfig{Store: m.store, State: state,
			Interval: m.Settings.duration("janitor_interval"), AuditRetention: m.Settings.duration("audit_retention"),
			OnDeleted: met.JanitorDeleted, Logger: m.Logger})
	}()
	if w, ok := m.store.(rescind.Watcher); ok {
		// Shared store: learn of other instances' changes by notification, and poll as a fallback.
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			coherence.Run(jctx, coherence.Config{Store: m.store, Watcher: w, State: state, Clients: clients,
				RefreshKeys: func(ctx context.Context) { km.Refresh(ctx) }, OnRevoked: srv.NotifyRevocations,
				PollInterval: m.Settings.duration("poll_interval"), Logger: m.Logger})
		}()
	}
	m.Logger.Info("rescind serving", "issuer", m.Issuer, "addr", m.Addr.String(), "admin_socket", m.AdminSock,
		"data_dir", dataDir, "revocations_loaded", n)
	return nil
}

func (m *Main) serve(ln net.Listener, h http.Handler) {
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
}

// Close stops accepting requests, lets those in flight finish (up to 10 s), commits queued
// revocations and closes the store.
func (m *Main) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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
	return fmt.Errorf("the issuer %s is plain HTTP on a host that is not loopback: serve HTTPS (--tls-cert and --tls-key, "+
		"or TLS at a proxy with an https issuer), or pass --insecure-http if you accept tokens in clear", issuer)
}

// secretsBox returns the box for stored keys, from RESCIND_SECRETS_KEY or the key file.
func secretsBox(configured, dataDir string) (*secret.Box, error) {
	material := []byte(configured)
	if configured == "" {
		var err error
		if material, err = secret.LoadOrCreateKeyFile(filepath.Join(dataDir, "secrets.key")); err != nil {
			return nil, err
		}
	}
	return secret.NewBox(material)
}

// lockDataDir takes an exclusive lock on the data directory, so two servers never share one
// SQLite database with two separate in-memory revocation states.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another rescind server", dir)
	}
	return f, nil
}

// adminClient returns the admin API client for CLI commands: --admin-url if set, else the
// socket in the data directory.
func adminClient(st settings) *admin.Client {
	if u := st["admin_url"]; u != "" {
		return &admin.Client{BaseURL: strings.TrimSuffix(u, "/"), Token: st["admin_token"],
			HTTP: &http.Client{Timeout: time.Minute}}
	}
	return admin.NewUnixClient(filepath.Join(st["data_dir"], "admin.sock"))
}
