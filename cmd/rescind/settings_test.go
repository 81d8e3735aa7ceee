package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// parseServe resolves the settings of `rescind serve args...` in process, with env set.
func parseServe(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	for _, st := range settingsTable { // a clean environment: only what the case sets
		if v, ok := os.LookupEnv(envName(st.key)); ok {
			t.Setenv(envName(st.key), v)
			os.Unsetenv(envName(st.key))
		}
	}
	t.Setenv("RESCIND_CONFIG", "")
	for k, v := range env {
		t.Setenv(k, v)
	}
	root := newRootCommand(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	var cfg Config
	var loadErr error
	for _, c := range root.Commands() {
		if c.Name() == "serve" {
			c.RunE = func(cmd *cobra.Command, _ []string) error {
				cfg, loadErr = loadSettings(cmd)
				return loadErr
			}
		}
	}
	root.SetArgs(append([]string{"serve"}, args...))
	if err := root.Execute(); err != nil {
		return Config{}, err
	}
	return cfg, loadErr
}

func TestTypedSettings(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfgTTL := file("ttl.yaml", "access_token_ttl: 3h\ninsecure_http: true\nauth_failure_burst: 7\n")
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(c Config) bool
		err   string // a substring of the error, or "" for success
	}{
		{"defaults", nil, nil, func(c Config) bool {
			return c.Addr == "127.0.0.1:8080" && c.AccessTokenTTL == time.Hour && !c.InsecureHTTP && c.AuthFailureBurst == 10 &&
				c.PollInterval == time.Second && c.source("addr") == "default"
		}, ""},
		{"bare boolean flag", nil, []string{"--insecure-http"}, func(c Config) bool { return c.InsecureHTTP }, ""},
		{"boolean flag =true", nil, []string{"--insecure-http=true"}, func(c Config) bool { return c.InsecureHTTP }, ""},
		{"boolean flag =false beats the environment", map[string]string{"RESCIND_INSECURE_HTTP": "true"},
			[]string{"--insecure-http=false"}, func(c Config) bool { return !c.InsecureHTTP && c.source("insecure_http") == "--insecure-http" }, ""},
		{"boolean from the environment", map[string]string{"RESCIND_ACCESS_LOG": "true"}, nil,
			func(c Config) bool { return c.AccessLog }, ""},
		{"boolean flag with a spaced value", nil, []string{"--insecure-http", "yes"}, nil,
			`unexpected argument "yes": "rescind serve" takes no arguments; a boolean flag takes its value after "=", as in --insecure-http=true`},
		{"boolean flag =yes", nil, []string{"--insecure-http=yes"}, nil,
			`insecure_http = "yes" (from --insecure-http): must be true or false (for example --insecure-http=true)`},
		{"boolean env yes", map[string]string{"RESCIND_REVOKE_GRANT_WITH_ACCESS_TOKEN": "yes"}, nil, nil,
			`revoke_grant_with_access_token = "yes" (from RESCIND_REVOKE_GRANT_WITH_ACCESS_TOKEN): must be true or false (for example RESCIND_REVOKE_GRANT_WITH_ACCESS_TOKEN=true)`},
		{"duration flag", nil, []string{"--access-token-ttl", "15m"}, func(c Config) bool { return c.AccessTokenTTL == 15*time.Minute }, ""},
		{"duration without unit", nil, []string{"--poll-interval", "5"}, nil,
			`poll_interval = "5" (from --poll-interval): must be a duration such as 30s, 15m or 1h (for example --poll-interval=1s)`},
		{"duration out of range", map[string]string{"RESCIND_ACCESS_TOKEN_TTL": "0s"}, nil, nil,
			`access_token_ttl = "0s" (from RESCIND_ACCESS_TOKEN_TTL): must be between 1s and 720h0m0s`},
		{"integer flag", nil, []string{"--auth-failure-burst", "20"}, func(c Config) bool { return c.AuthFailureBurst == 20 }, ""},
		{"integer flag not a number", nil, []string{"--auth-failure-burst", "ten"}, nil,
			`auth_failure_burst = "ten" (from --auth-failure-burst): must be a whole number (for example --auth-failure-burst=10)`},
		{"config file", nil, []string{"--config", cfgTTL}, func(c Config) bool {
			return c.AccessTokenTTL == 3*time.Hour && c.InsecureHTTP && c.AuthFailureBurst == 7 &&
				c.source("access_token_ttl") == "config file "+cfgTTL
		}, ""},
		{"environment beats config file", map[string]string{"RESCIND_ACCESS_TOKEN_TTL": "2h"}, []string{"--config", cfgTTL},
			func(c Config) bool { return c.AccessTokenTTL == 2*time.Hour && c.AuthFailureBurst == 7 }, ""},
		{"flag beats environment and file", map[string]string{"RESCIND_ACCESS_TOKEN_TTL": "2h"},
			[]string{"--config", cfgTTL, "--access-token-ttl", "1m"}, func(c Config) bool { return c.AccessTokenTTL == time.Minute }, ""},
		{"bad value in the config file", nil, []string{"--config", file("bad.yaml", "access_token_ttl: soon\n")}, nil,
			`access_token_ttl = "soon" (from config file ` + filepath.Join(dir, "bad.yaml") + `): must be a duration such as 30s, 15m or 1h (for example access_token_ttl: 1h)`},
		{"unknown key in the config file", nil, []string{"--config", file("unknown.yaml", "acess_token_ttl: 1h\n")}, nil,
			"config file: unknown keys acess_token_ttl"},
		{"secrets key from the environment", map[string]string{"RESCIND_SECRETS_KEY": strings.Repeat("k", 32)}, nil,
			func(c Config) bool { return c.SecretsKey == strings.Repeat("k", 32) }, ""},
		{"secrets key in the config file", nil, []string{"--config", file("sk.yaml", "secrets_key: "+strings.Repeat("k", 32)+"\n")}, nil,
			"secrets_key is in the config file " + filepath.Join(dir, "sk.yaml") + ": secrets come only from the environment; remove it there and set RESCIND_SECRETS_KEY instead"},
		{"admin token in the config file", nil, []string{"--config", file("at.toml", "admin_token = \"t0k3n\"\n")}, nil,
			"admin_token is in the config file " + filepath.Join(dir, "at.toml") + ": secrets come only from the environment; remove it there and set RESCIND_ADMIN_TOKEN instead"},
		{"database password in the config file", nil, []string{"--config", file("db.yaml", "db: postgres://rescind:hunter2@db.example/rescind\n")}, nil,
			"db in the config file " + filepath.Join(dir, "db.yaml") + " carries a password"},
		{"database password as a query parameter in the config file", nil,
			[]string{"--config", file("dbq.yaml", "db: postgres://rescind@db.example/rescind?password=hunter2\n")}, nil, "carries a password"},
		{"database without password in the config file", nil, []string{"--config", file("dbok.yaml", "db: postgres://rescind@db.example/rescind\n")},
			func(c Config) bool { return c.DB == "postgres://rescind@db.example/rescind" }, ""},
		{"database password from the environment", map[string]string{"RESCIND_DB": "postgres://rescind:hunter2@db.example/rescind"}, nil,
			func(c Config) bool { return c.DB == "postgres://rescind:hunter2@db.example/rescind" }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServe(t, tc.env, tc.args...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v; want one containing %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("config = %+v", c)
			}
		})
	}
}

// TestServeHelp: the help shows typed flags with typed defaults, and the settings that come
// only from the environment.
func TestServeHelp(t *testing.T) {
	var out bytes.Buffer
	root := newRootCommand(strings.NewReader(""), &out, &out)
	root.SetArgs([]string{"serve", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	for _, want := range []string{
		"--access-token-ttl duration", "(default 1h)",
		"--auth-failure-burst int", "(default 10)",
		"--poll-interval duration",
		"RESCIND_SECRETS_KEY", "RESCIND_ADMIN_TOKEN", "RESCIND_DB",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	for _, line := range strings.Split(help, "\n") {
		for _, flag := range []string{"--insecure-http ", "--access-log ", "--revoke-grant-with-access-token "} {
			if strings.Contains(line, flag) && (strings.Contains(line, "string") || strings.Contains(line, `[="true"]`)) {
				t.Errorf("a boolean flag shows as a string: %q", line)
			}
		}
	}
}

// TestSettingsTableMatchesConfig: every row has a typed field and every field a row (the table
// and the struct cannot drift), and each default parses as its field's type.
func TestSettingsTableMatchesConfig(t *testing.T) {
	for _, st := range settingsTable {
		var c Config
		if st.def == "" {
			continue
		}
		if _, err := c.parseInto(st.key, st.def); err != nil {
			t.Errorf("default of %s (%q) is not a %s: %v", st.key, st.def, fieldKind(st.key), err)
		}
		if st.validate != nil {
			if err := st.validate(st.def); err != nil {
				t.Errorf("default of %s is invalid: %v", st.key, err)
			}
		}
	}
}

// TestInsecureHTTPFlagForms drives the built binary: a plain-HTTP issuer off loopback starts
// with --insecure-http and with --insecure-http=true, is refused without it or with
// --insecure-http=false, and "--insecure-http yes" is a clear error.
func TestInsecureHTTPFlagForms(t *testing.T) {
	dir := shortTempDir(t)
	issuer := []string{"--issuer", "http://auth.example:8080"}
	for i, form := range [][]string{{"--insecure-http"}, {"--insecure-http=true"}} {
		srv := startServer(t, filepath.Join(dir, fmt.Sprint("ok", i)), nil, append(issuer, form...)...)
		srv.stop()
	}
	for _, tc := range []struct {
		form []string
		want string
	}{
		{nil, "plain HTTP on a host that is not loopback"},
		{[]string{"--insecure-http=false"}, "plain HTTP on a host that is not loopback"},
		{[]string{"--insecure-http", "yes"}, `unexpected argument "yes"`},
		{[]string{"--insecure-http=yes"}, `insecure_http = "yes" (from --insecure-http): must be true or false`},
	} {
		args := append([]string{"serve", "--addr", freePort(t), "--data-dir", filepath.Join(dir, "refused")}, issuer...)
		stderr, code := runServeFailure(t, nil, append(args, tc.form...)...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", tc.form, code, stderr, tc.want)
		}
	}
	help := cli(t, nil, "serve", "--help")
	if !strings.Contains(help, "--status-list-ttl duration") || !strings.Contains(help, "--auth-failure-per-minute int") ||
		strings.Contains(help, "--insecure-http string") {
		t.Fatalf("serve --help:\n%s", help)
	}
}
