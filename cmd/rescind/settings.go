package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/rescind/rescind/internal/clientip"
	"github.com/rescind/rescind/internal/secret"
)

// setting is one configuration key. A value comes from, in order of precedence: the command-line
// flag, the RESCIND_<KEY> environment variable, the config file, the default.
type setting struct {
	key      string // config-file key; env is RESCIND_ + upper(key)
	flag     string // command-line flag, or "" for keys that must not appear in argv (secrets)
	def      string
	secret   bool // never printed
	validate func(string) error
	help     string
}

var settingsTable = []setting{
	{key: "addr", flag: "addr", def: "127.0.0.1:8080", validate: validAddr, help: "address of the OAuth endpoints"},
	{key: "data_dir", flag: "data-dir", def: "./rescind-data", validate: nonEmpty, help: "directory for the database, secrets key and admin socket"},
	{key: "issuer", flag: "issuer", help: "issuer URL (default: derived from --addr)", validate: validIssuer},
	{key: "log_format", flag: "log-format", def: "text", validate: oneOf("text", "json"), help: "log format: text or json"},
	{key: "log_level", flag: "log-level", def: "info", validate: oneOf("debug", "info", "warn", "error"), help: "log level: debug, info, warn or error"},
	{key: "admin_addr", flag: "admin-addr", validate: validOptionalAddr, help: "also serve the admin API on this TCP address (requires RESCIND_ADMIN_TOKEN)"},
	{key: "admin_url", flag: "admin-url", validate: validOptionalURL, help: "admin API URL used by CLI commands (default: the Unix socket in --data-dir)"},
	{key: "admin_token", secret: true, validate: validAdminToken, help: "bearer token (32+ bytes) for the admin API over TCP (env RESCIND_ADMIN_TOKEN)"},
	{key: "secrets_key", secret: true, validate: validSecretsKey, help: "key (32+ bytes) encrypting stored keys (env RESCIND_SECRETS_KEY; default: a file in the data dir)"},
	{key: "db", flag: "db", validate: validDB, secret: true, help: "database: empty for SQLite in the data dir, or a postgres:// URL (env RESCIND_DB)"},
	{key: "poll_interval", flag: "poll-interval", def: "1s", validate: durationBetween(10*time.Millisecond, time.Hour), help: "with PostgreSQL: fallback poll for changes made by other instances (bounds staleness if a notification is lost)"},
	{key: "access_token_ttl", flag: "access-token-ttl", def: "1h", validate: durationBetween(time.Second, 30*24*time.Hour), help: "default access token lifetime"},
	{key: "refresh_token_ttl", flag: "refresh-token-ttl", def: "720h", validate: durationBetween(time.Minute, 365*24*time.Hour), help: "refresh token lifetime"},
	{key: "revoke_grant_with_access_token", flag: "revoke-grant-with-access-token", def: "false", validate: oneOf("true", "false"), help: "revoking an access token also revokes its grant (all tokens of it)"},
	{key: "signing_alg", flag: "signing-alg", def: "ES256", validate: oneOf("ES256", "EdDSA"), help: "algorithm of new JWT signing keys: ES256 or EdDSA"},
	{key: "status_list_ttl", flag: "status-list-ttl", def: "60s", validate: durationBetween(time.Second, 24*time.Hour), help: "ttl of published status lists: how stale a resource server without push may be"},
	{key: "auth_failure_burst", flag: "auth-failure-burst", def: "10", validate: intBetween(1, 100000), help: "failed client authentications or logins absorbed at once, per source address"},
	{key: "auth_failure_per_minute", flag: "auth-failure-per-minute", def: "10", validate: intBetween(1, 1000000), help: "failed client authentications or logins absorbed per minute, per source address"},
	{key: "tls_cert", flag: "tls-cert", help: "serve HTTPS with this certificate (PEM); needs --tls-key"},
	{key: "tls_key", flag: "tls-key", secret: true, help: "the certificate's private key (PEM)"},
	{key: "insecure_http", flag: "insecure-http", def: "false", validate: oneOf("true", "false"), help: "allow a plain-HTTP issuer that is not on loopback (tokens would cross the network in clear)"},
	{key: "audit_retention", flag: "audit-retention", def: "720h", validate: durationBetween(time.Hour, 10*365*24*time.Hour), help: "how long audit entries are kept"},
	{key: "janitor_interval", flag: "janitor-interval", def: "1m", validate: durationBetween(time.Second, 24*time.Hour), help: "how often expired revocation records are deleted"},
	{key: "metrics_addr", flag: "metrics-addr", validate: validOptionalAddr, help: "also serve GET /metrics (and nothing else), without authentication, on this TCP address"},
	{key: "trusted_proxies", flag: "trusted-proxies", validate: validCIDRList, help: "comma-separated CIDR ranges of reverse proxies allowed to name the client address (X-Forwarded-For, Forwarded)"},
	{key: "admin_ca", flag: "admin-ca", validate: validAdminCA, help: "PEM file of CA certificates the CLI trusts for an https --admin-url (e.g. the server's own certificate)"},
}

func envName(key string) string { return "RESCIND_" + strings.ToUpper(key) }

// settings are resolved configuration values, by key.
type settings map[string]string

func (s settings) duration(key string) time.Duration {
	d, _ := time.ParseDuration(s[key]) // validated at load
	return d
}

// addSettingFlags registers the flags of the given keys on fs.
func addSettingFlags(cmd *cobra.Command, persistent bool, keys ...string) {
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	for _, k := range keys {
		st := lookupSetting(k)
		fs.String(st.flag, st.def, st.help)
		if st.def == "false" { // a boolean setting: the bare flag means true
			fs.Lookup(st.flag).NoOptDefVal = "true"
		}
	}
}

func lookupSetting(key string) setting {
	for _, st := range settingsTable {
		if st.key == key {
			return st
		}
	}
	panic("unknown setting " + key) // programming error, caught by any test that runs the command
}

// loadSettings resolves every setting for cmd and validates it.
func loadSettings(cmd *cobra.Command) (settings, error) {
	file := map[string]string{}
	if path, _ := cmd.Flags().GetString("config"); path != "" {
		var err error
		if file, err = readConfigFile(path); err != nil {
			return nil, err
		}
	} else if path := os.Getenv("RESCIND_CONFIG"); path != "" {
		var err error
		if file, err = readConfigFile(path); err != nil {
			return nil, err
		}
	}
	out := settings{}
	var problems []string
	for _, st := range settingsTable {
		v, src := st.def, "default"
		if fv, ok := file[st.key]; ok {
			v, src = fv, "config file"
		}
		if ev, ok := os.LookupEnv(envName(st.key)); ok {
			v, src = ev, envName(st.key)
		}
		if st.flag != "" {
			if f := cmd.Flags().Lookup(st.flag); f != nil && f.Changed {
				v, src = f.Value.String(), "--"+st.flag
			}
		}
		if st.validate != nil && (v != "" || st.def != "") {
			if err := st.validate(v); err != nil {
				shown := v
				if st.secret {
					shown = "(hidden)"
				}
				problems = append(problems, fmt.Sprintf("%s = %q (from %s): %v", st.key, shown, src, err))
			}
		}
		out[st.key] = v
	}
	if (out["tls_cert"] == "") != (out["tls_key"] == "") {
		problems = append(problems, "tls_cert and tls_key go together: give both or neither")
	}
	if out["admin_addr"] != "" && out["admin_token"] == "" {
		problems = append(problems, "admin_addr is set but RESCIND_ADMIN_TOKEN is empty: a TCP admin listener needs a token")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("invalid settings:\n  %s", strings.Join(problems, "\n  "))
	}
	return out, nil
}

// readConfigFile reads a flat YAML (.yaml, .yml) or TOML (.toml) file of setting keys.
func readConfigFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return parseConfig(filepath.Ext(path), b)
}

func parseConfig(ext string, b []byte) (map[string]string, error) {
	raw := map[string]any{}
	switch strings.ToLower(ext) {
	case ".yaml", ".yml":
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
	case ".toml":
		if err := toml.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("config file: %w", err)
		}
	default:
		return nil, fmt.Errorf("config file must end in .yaml, .yml or .toml, not %q", ext)
	}
	out := map[string]string{}
	var unknown []string
	for k, v := range raw {
		known := false
		for _, st := range settingsTable {
			if st.key == k {
				known = true
			}
		}
		if !known {
			unknown = append(unknown, k)
			continue
		}
		switch v := v.(type) {
		case string:
			out[k] = v
		case int, int64, float64, bool:
			out[k] = fmt.Sprint(v)
		default:
			return nil, fmt.Errorf("config file: %s must be a string, number or boolean", k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("config file: unknown keys %s", strings.Join(unknown, ", "))
	}
	return out, nil
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

func validAddr(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("must be host:port: %w", err)
	}
	if port == "" {
		return errors.New("must include a port")
	}
	return nil
}

func validOptionalAddr(v string) error {
	if v == "" {
		return nil
	}
	return validAddr(v)
}

func validOptionalURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http or https URL")
	}
	return nil
}

// validIssuer checks an issuer identifier per RFC 8414 §2: an https URL (http allowed here for
// development) with no query or fragment.
func validIssuer(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http or https URL")
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return errors.New("must not have a query, fragment or user info (RFC 8414 §2)")
	}
	return nil
}

// isPostgres reports whether a db setting names PostgreSQL.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

func validDB(v string) error {
	if v == "" || isPostgres(v) {
		return nil
	}
	return errors.New("must be empty (SQLite in the data dir) or a postgres:// URL")
}

func validSecretsKey(v string) error {
	if v == "" {
		return nil
	}
	if len(v) < secret.MinKeyMaterial {
		return fmt.Errorf("must be at least %d bytes (try: openssl rand -base64 32)", secret.MinKeyMaterial)
	}
	return nil
}

// MinAdminToken is the shortest admin token accepted: 32 bytes, as for the secrets key.
const MinAdminToken = 32

func validAdminToken(v string) error {
	if v == "" {
		return nil
	}
	if len(v) < MinAdminToken {
		return fmt.Errorf("must be at least %d bytes (try: openssl rand -base64 32)", MinAdminToken)
	}
	return nil
}

func validCIDRList(v string) error {
	if _, err := clientip.Parse(v); err != nil {
		return errors.New("must be comma-separated CIDR ranges such as 10.0.0.0/8,192.168.1.5/32")
	}
	return nil
}

func validAdminCA(v string) error {
	if v == "" {
		return nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return fmt.Errorf("cannot read the CA file: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return errors.New("holds no PEM certificate")
	}
	return nil
}

func intBetween(lo, hi int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be a whole number from %d to %d", lo, hi)
		}
		return nil
	}
}

func durationBetween(lo, hi time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("must be a duration such as 30s, 15m or 1h")
		}
		if d < lo || d > hi {
			return fmt.Errorf("must be between %s and %s", lo, hi)
		}
		return nil
	}
}
