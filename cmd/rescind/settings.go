package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientip"
	"github.com/rescind/rescind/internal/secret"
)

// setting is one configuration key. A value comes from, in order of precedence: the command-line
// flag, the RESCIND_<KEY> environment variable, the config file, the default. Its type is the
// type of the Config field tagged with its key (string, bool, int or time.Duration): the flag
// is typed accordingly, and the value is parsed into that field once, at start.
type setting struct {
	key      string // config-file key; env is RESCIND_ + upper(key); Config field tag
	flag     string // command-line flag, or "" for keys that must not appear in argv (secrets)
	def      string // default, as text in the field's type ("1s", "false", "10")
	secret   bool   // never printed
	envOnly  bool   // only from the environment: refused in the config file
	validate func(string) error
	help     string
}

// settingsTable is every setting. To add one: a row here, a field of its type in Config tagged
// with its key, and its key in the addSettingFlags call of each command that takes it; the code
// then reads the field (a test checks that rows and fields match).
var settingsTable = []setting{
	{key: "addr", flag: "addr", def: "127.0.0.1:8080", validate: validAddr, help: "address of the OAuth endpoints"},
	{key: "data_dir", flag: "data-dir", def: "./rescind-data", validate: nonEmpty, help: "directory for the database, secrets key and admin socket"},
	{key: "issuer", flag: "issuer", help: "issuer URL (default: derived from --addr; required when --addr is not on loopback)", validate: validIssuer},
	{key: "log_format", flag: "log-format", def: "text", validate: oneOf("text", "json"), help: "log format: text or json"},
	{key: "log_level", flag: "log-level", def: "info", validate: oneOf("debug", "info", "warn", "error"), help: "log level: debug, info, warn or error"},
	{key: "admin_addr", flag: "admin-addr", validate: validOptionalAddr, help: "also serve the admin API on this TCP address (requires RESCIND_ADMIN_TOKEN)"},
	{key: "admin_url", flag: "admin-url", validate: validOptionalURL, help: "admin API URL used by CLI commands (default: the Unix socket in --data-dir)"},
	{key: "admin_token", secret: true, envOnly: true, validate: validAdminToken, help: "bearer token (32+ bytes) for the admin API over TCP"},
	{key: "secrets_key", secret: true, envOnly: true, validate: validSecretsKey, help: "key (32+ bytes) encrypting the stored keys (default: the file secrets.key in the data dir)"},
	{key: "db", flag: "db", validate: validDB, secret: true, help: "database: empty for SQLite in the data dir, or a postgres:// URL (with a password: env RESCIND_DB only)"},
	{key: "poll_interval", flag: "poll-interval", def: "1s", validate: durationBetween(10*time.Millisecond, time.Hour), help: "with PostgreSQL: fallback poll for changes made by other instances (bounds staleness if a notification is lost); a new signing key waits this much longer before it signs"},
	{key: "access_token_ttl", flag: "access-token-ttl", def: "1h", validate: durationBetween(time.Second, rescind.MaxAccessTokenTTL), help: "default access token lifetime"},
	{key: "refresh_token_ttl", flag: "refresh-token-ttl", def: "720h", validate: durationBetween(time.Minute, 365*24*time.Hour), help: "refresh token lifetime"},
	{key: "revoke_grant_with_access_token", flag: "revoke-grant-with-access-token", def: "false", help: "revoking an access token also revokes its grant (all tokens of it)"},
	{key: "signing_alg", flag: "signing-alg", def: "ES256", validate: oneOf("ES256", "EdDSA"), help: "algorithm of new JWT signing keys: ES256 or EdDSA"},
	{key: "status_list_ttl", flag: "status-list-ttl", def: "60s", validate: durationBetween(time.Second, 24*time.Hour), help: "ttl of published status lists: how stale a resource server without push may be"},
	{key: "auth_failure_burst", flag: "auth-failure-burst", def: "10", validate: intBetween(1, 100000), help: "failed client authentications or logins absorbed at once, per source address"},
	{key: "auth_failure_per_minute", flag: "auth-failure-per-minute", def: "10", validate: intBetween(1, 1000000), help: "failed client authentications or logins absorbed per minute, per source address"},
	{key: "tls_cert", flag: "tls-cert", help: "serve HTTPS with this certificate (PEM); needs --tls-key"},
	{key: "tls_key", flag: "tls-key", secret: true, help: "the certificate's private key (PEM)"},
	{key: "insecure_http", flag: "insecure-http", def: "false", help: "allow a plain-HTTP issuer that is not on loopback (tokens would cross the network in clear)"},
	{key: "audit_retention", flag: "audit-retention", def: "720h", validate: durationBetween(time.Hour, 10*365*24*time.Hour), help: "how long audit entries are kept"},
	{key: "janitor_interval", flag: "janitor-interval", def: "1m", validate: durationBetween(time.Second, 24*time.Hour), help: "how often expired revocation records are deleted"},
	{key: "access_log", flag: "access-log", def: "false", help: "log one line per request: method, path, status, duration, client_id, remote address (never a token or secret)"},
	{key: "metrics_addr", flag: "metrics-addr", validate: validOptionalAddr, help: "also serve GET /metrics (and nothing else), without authentication, on this TCP address"},
	{key: "trusted_proxies", flag: "trusted-proxies", validate: validCIDRList, help: "comma-separated CIDR ranges of reverse proxies allowed to name the client address (X-Forwarded-For, Forwarded)"},
	{key: "admin_ca", flag: "admin-ca", validate: validAdminCA, help: "PEM file of CA certificates the CLI trusts for an https --admin-url (e.g. the server's own certificate)"},
	{key: "clock_skew", flag: "clock-skew", def: "1m", validate: durationBetween(time.Second, time.Hour), help: "largest clock difference between instances, and between them and resource servers: revocation records are kept this long past their tokens' expiry, and a new signing key waits this much longer before it signs"},
	{key: "dpop_nonce", flag: "dpop-nonce", def: "auto", validate: oneOf("off", "auto", "always"), help: "when DPoP proofs at the token endpoint must carry a server nonce (RFC 9449 §8): off, auto (public clients and clients created with --require-dpop) or always"},
	{key: "session_idle", flag: "session-idle", def: "12h", validate: durationBetween(time.Minute, 365*24*time.Hour), help: "a sign-in session not used for this long ends"},
	{key: "session_max", flag: "session-max", def: "720h", validate: durationBetween(time.Minute, 365*24*time.Hour), help: "a sign-in session ends this long after sign-in, however much it is used"},
	{key: "login_failure_burst_per_user", flag: "login-failure-burst-per-user", def: "10", validate: intBetween(1, 100000), help: "failed logins absorbed at once per username, from all addresses together (a browser the person signed in on before has a bucket of the same size of its own)"},
	{key: "login_failures_per_hour_per_user", flag: "login-failures-per-hour-per-user", def: "6", validate: intBetween(1, 1000000), help: "failed logins absorbed per hour per username, from all addresses together"},
	{key: "outbox_allow_loopback", flag: "outbox-allow-loopback", def: "false", help: "deliver outbox messages (back-channel logout tokens) to loopback addresses too, and let clients register such receivers: development and tests only"},
	{key: "logout_revokes_grants", flag: "logout-revokes-grants", def: "false", help: "ending a sign-in session (any way: logout, user logout, set-password, expiry) also revokes the grants made in it"},
	{key: "backchannel_logout_window", flag: "backchannel-logout-window", def: "24h", validate: durationBetween(time.Minute, 30*24*time.Hour), help: "how long a back-channel logout token is retried before it is given up (and audited)"},
	{key: "outbox_poll_interval", flag: "outbox-poll-interval", def: "1s", validate: durationBetween(10*time.Millisecond, time.Hour), help: "how often each instance looks for outbox messages due (back-channel logout, Shared Signals push) that nothing woke it for: written by another instance, or a retry coming due"},
	{key: "registration", flag: "registration", def: "off", validate: oneOf("off", "token", "open"), help: "dynamic client registration (RFC 7591) at /oauth2/register: off, token (each registration needs an initial access token from rescind registration-token create) or open (public clients only, rate-limited per address)"},
	{key: "registration_per_hour", flag: "registration-per-hour", def: "20", validate: intBetween(1, 1000000), help: "with --registration open: registrations allowed per source address an hour"},
	{key: "client_metadata_documents", flag: "client-metadata-documents", def: "false", help: "accept an https URL as client_id: the client's metadata document there is fetched and used (draft-ietf-oauth-client-id-metadata-document)"},
	{key: "allow_insecure_redirect", flag: "allow-insecure-redirect", def: "false", help: "development only: clients that register themselves may use plain-http redirect URIs off loopback, and metadata documents may be fetched from loopback"},
	{key: "dynamic_token_format", flag: "dynamic-token-format", def: "jwt", validate: oneOf("jwt", "opaque"), help: "access token format of clients that register themselves (dynamic registration, metadata documents) when their registration names none: jwt (resource servers check them without credentials of their own) or opaque"},
	{key: "scopes", flag: "scopes", validate: validScopes, help: `space-separated scopes the server supports: published as scopes_supported, and the only ones self-registered clients may have (default: your clients' scopes are published, and self-registered clients may ask for any)`},
	{key: "ssf_allow_loopback_push", flag: "ssf-allow-loopback-push", def: "false", help: "let Shared Signals push streams deliver to loopback (http or https), for development and tests; private and link-local addresses stay refused"},
}

// Config is every setting, typed, resolved once at start (see settingsTable): what the server
// and the commands read. Each field's tag names its key in settingsTable.
type Config struct {
	Addr                       string        `setting:"addr"`
	DataDir                    string        `setting:"data_dir"`
	Issuer                     string        `setting:"issuer"`
	LogFormat                  string        `setting:"log_format"`
	LogLevel                   string        `setting:"log_level"`
	AdminAddr                  string        `setting:"admin_addr"`
	AdminURL                   string        `setting:"admin_url"`
	AdminToken                 string        `setting:"admin_token"`
	SecretsKey                 string        `setting:"secrets_key"`
	DB                         string        `setting:"db"`
	PollInterval               time.Duration `setting:"poll_interval"`
	AccessTokenTTL             time.Duration `setting:"access_token_ttl"`
	RefreshTokenTTL            time.Duration `setting:"refresh_token_ttl"`
	RevokeGrantWithAccessToken bool          `setting:"revoke_grant_with_access_token"`
	SigningAlg                 string        `setting:"signing_alg"`
	StatusListTTL              time.Duration `setting:"status_list_ttl"`
	AuthFailureBurst           int           `setting:"auth_failure_burst"`
	AuthFailurePerMinute       int           `setting:"auth_failure_per_minute"`
	TLSCert                    string        `setting:"tls_cert"`
	TLSKey                     string        `setting:"tls_key"`
	InsecureHTTP               bool          `setting:"insecure_http"`
	AuditRetention             time.Duration `setting:"audit_retention"`
	JanitorInterval            time.Duration `setting:"janitor_interval"`
	AccessLog                  bool          `setting:"access_log"`
	MetricsAddr                string        `setting:"metrics_addr"`
	TrustedProxies             string        `setting:"trusted_proxies"`
	AdminCA                    string        `setting:"admin_ca"`
	ClockSkew                  time.Duration `setting:"clock_skew"`
	DPoPNonce                  string        `setting:"dpop_nonce"`
	SessionIdle                time.Duration `setting:"session_idle"`
	SessionMax                 time.Duration `setting:"session_max"`
	LoginFailureBurstPerUser   int           `setting:"login_failure_burst_per_user"`
	LoginFailuresPerUserHour   int           `setting:"login_failures_per_hour_per_user"`
	OutboxPollInterval         time.Duration `setting:"outbox_poll_interval"`
	OutboxAllowLoopback        bool          `setting:"outbox_allow_loopback"`
	LogoutRevokesGrants        bool          `setting:"logout_revokes_grants"`
	BackchannelLogoutWindow    time.Duration `setting:"backchannel_logout_window"`
	Registration               string        `setting:"registration"`
	RegistrationPerHour        int           `setting:"registration_per_hour"`
	ClientMetadataDocuments    bool          `setting:"client_metadata_documents"`
	AllowInsecureRedirect      bool          `setting:"allow_insecure_redirect"`
	DynamicTokenFormat         string        `setting:"dynamic_token_format"`
	Scopes                     string        `setting:"scopes"`
	SSFAllowLoopbackPush       bool          `setting:"ssf_allow_loopback_push"`

	// sources names where each key's value came from ("--addr", "RESCIND_ADDR", "config file
	// rescind.yaml", "default"), for error messages.
	sources map[string]string
}

// source names where the value of key came from, for messages.
func (c Config) source(key string) string {
	if s, ok := c.sources[key]; ok {
		return s
	}
	return "default"
}

// describe names a setting and where its value came from, as in `addr (from --addr)`.
func (c Config) describe(key string) string { return key + " (from " + c.source(key) + ")" }

// configFields maps each setting key to its Config field index. Built once; a key without a
// field, or a tagged field without a row, is a programming error caught by any test.
var configFields = func() map[string]int {
	t := reflect.TypeFor[Config]()
	out := map[string]int{}
	for i := range t.NumField() {
		if k := t.Field(i).Tag.Get("setting"); k != "" {
			out[k] = i
		}
	}
	for _, st := range settingsTable {
		if _, ok := out[st.key]; !ok {
			panic("setting " + st.key + " has no Config field")
		}
	}
	if len(out) != len(settingsTable) {
		panic("a Config field has no row in settingsTable")
	}
	return out
}()

// fieldKind is a setting's type name as shown in help: "string", "bool", "int" or "duration".
func fieldKind(key string) string {
	f := reflect.TypeFor[Config]().Field(configFields[key])
	switch f.Type {
	case reflect.TypeFor[time.Duration]():
		return "duration"
	case reflect.TypeFor[bool]():
		return "bool"
	case reflect.TypeFor[int]():
		return "int"
	case reflect.TypeFor[string]():
		return "string"
	}
	panic("setting " + key + " has an unsupported type " + f.Type.String())
}

// parseInto parses v by the type of key's field, stores it in c and returns the canonical text
// for the row's validator (for booleans, "true" or "false").
func (c *Config) parseInto(key, v string) (string, error) {
	f := reflect.ValueOf(c).Elem().Field(configFields[key])
	switch fieldKind(key) {
	case "duration":
		d, err := time.ParseDuration(v)
		if err != nil {
			return v, errors.New("must be a duration such as 30s, 15m or 1h")
		}
		f.SetInt(int64(d))
	case "bool":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return v, errors.New("must be true or false")
		}
		f.SetBool(b)
		return strconv.FormatBool(b), nil
	case "int":
		n, err := strconv.Atoi(v)
		if err != nil {
			return v, errors.New("must be a whole number")
		}
		f.SetInt(int64(n))
	default:
		f.SetString(v)
	}
	return v, nil
}

// settingValue is a setting's flag. It keeps the text as typed: parsing and validation happen
// when the settings are loaded, so a bad flag gets the same message as a bad environment
// variable or config file entry (the setting, its source, what is valid).
type settingValue struct {
	kind string
	text string
}

func (v *settingValue) String() string     { return v.text }
func (v *settingValue) Set(s string) error { v.text = s; return nil }
func (v *settingValue) Type() string       { return v.kind }

// IsBoolFlag marks a boolean setting's flag, which may be given bare (--insecure-http) or with
// a value (--insecure-http=false).
func (v *settingValue) IsBoolFlag() bool { return v.kind == "bool" }

func envName(key string) string { return "RESCIND_" + strings.ToUpper(key) }

// addSettingFlags registers the flags of the given keys on cmd, typed as their Config fields.
func addSettingFlags(cmd *cobra.Command, persistent bool, keys ...string) {
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	for _, k := range keys {
		st := lookupSetting(k)
		kind := fieldKind(k)
		f := fs.VarPF(&settingValue{kind: kind, text: st.def}, st.flag, "", st.help)
		if kind == "bool" { // the bare flag means true
			f.NoOptDefVal = "true"
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

// envOnlyHelp lists the settings that come only from the environment, for a command's help.
func envOnlyHelp() string {
	var b strings.Builder
	b.WriteString("Secrets come only from the environment, never from flags (visible in ps) or the config file:\n")
	for _, st := range settingsTable {
		if st.envOnly {
			fmt.Fprintf(&b, "  %-22s %s\n", envName(st.key), st.help)
		}
	}
	fmt.Fprintf(&b, "  %-22s %s\n", envName("db"), "the database URL; with a password in it, only from the environment")
	return b.String()
}

// loadSettings resolves every setting for cmd, validates it and returns the typed Config.
func loadSettings(cmd *cobra.Command) (Config, error) {
	file := map[string]string{}
	fileSrc := ""
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv("RESCIND_CONFIG")
	}
	if path != "" {
		var err error
		if file, err = readConfigFile(path); err != nil {
			return Config{}, err
		}
		fileSrc = "config file " + path
	}
	cfg := Config{sources: map[string]string{}}
	var problems []string
	for _, st := range settingsTable {
		v, src := st.def, "default"
		if fv, ok := file[st.key]; ok {
			v, src = fv, fileSrc
			if st.envOnly {
				problems = append(problems, fmt.Sprintf("%s is in the %s: secrets come only from the environment; "+
					"remove it there and set %s instead", st.key, fileSrc, envName(st.key)))
			}
			if st.key == "db" && hasPassword(fv) {
				problems = append(problems, fmt.Sprintf("db in the %s carries a password: secrets come only from the "+
					"environment; remove it there and set %s instead", fileSrc, envName(st.key)))
			}
		}
		if ev, ok := os.LookupEnv(envName(st.key)); ok {
			v, src = ev, envName(st.key)
		}
		if st.flag != "" {
			if f := cmd.Flags().Lookup(st.flag); f != nil && f.Changed {
				v, src = f.Value.String(), "--"+st.flag
			}
		}
		cfg.sources[st.key] = src
		if v == "" && st.def == "" {
			continue // unset and optional: the zero value
		}
		canon, err := cfg.parseInto(st.key, v)
		if err == nil && st.validate != nil {
			err = st.validate(canon)
		}
		if err != nil {
			problems = append(problems, settingProblem(st, v, src, err))
		}
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		problems = append(problems, "tls_cert and tls_key go together: give both or neither")
	}
	if cfg.AdminAddr != "" && cfg.AdminToken == "" {
		problems = append(problems, "admin_addr is set but RESCIND_ADMIN_TOKEN is empty: a TCP admin listener needs a token")
	}
	switch len(problems) {
	case 0:
		return cfg, nil
	case 1:
		return Config{}, fmt.Errorf("invalid setting: %s", problems[0])
	default:
		return Config{}, fmt.Errorf("invalid settings:\n  %s", strings.Join(problems, "\n  "))
	}
}

// settingProblem describes an invalid value: the setting, its source, what is wrong, and a
// valid example in the form of that source.
func settingProblem(st setting, v, src string, err error) string {
	shown := strconv.Quote(v)
	if st.secret {
		shown = "(hidden)"
	}
	msg := fmt.Sprintf("%s = %s (from %s): %v", st.key, shown, src, err)
	if ex := exampleValue(st); ex != "" {
		switch {
		case strings.HasPrefix(src, "--"):
			msg += fmt.Sprintf(" (for example %s=%s)", src, ex)
		case strings.HasPrefix(src, "RESCIND_"):
			msg += fmt.Sprintf(" (for example %s=%s)", src, ex)
		case strings.HasPrefix(src, "config file"):
			msg += fmt.Sprintf(" (for example %s: %s)", st.key, ex)
		}
	}
	return msg
}

// exampleValue is a valid value of st, for error messages: its default, or one of its type.
func exampleValue(st setting) string {
	if st.secret {
		return ""
	}
	if st.def != "" && st.def != "false" {
		return st.def
	}
	switch fieldKind(st.key) {
	case "bool":
		return "true"
	case "duration":
		return "30s"
	}
	return ""
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
		if _, known := configFields[k]; !known {
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

// hasPassword reports whether a database URL carries a password (in its user info or its
// query).
func hasPassword(db string) bool {
	u, err := url.Parse(db)
	if err != nil {
		return strings.Contains(db, "@") // unparsable: assume the worst
	}
	if _, ok := u.User.Password(); ok {
		return true
	}
	return u.Query().Has("password")
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

// validScopes checks a space-separated list of scope-tokens (RFC 6749 §3.3).
func validScopes(v string) error {
	for _, sc := range strings.Fields(v) {
		if !rescind.ValidScopeToken(sc) {
			return fmt.Errorf("%q is not a scope-token (RFC 6749 §3.3): scopes are separated by spaces", sc)
		}
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
