package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/client"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/internal/revfill"
	"github.com/rescind/rescind/resource"
	"github.com/rescind/rescind/store/postgres"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

// benchFlags are the flags of `rescind bench`.
type benchFlags struct {
	embedded    bool
	ceiling     bool
	issuer      string
	clientID    string
	secretFile  string
	scenarios   string
	connections int
	duration    time.Duration
	warmup      time.Duration
	rate        int
	mix         string
	jsonOut     bool
	tokenFormat string
	maxRequests int64
	db          string
	preload     int
	failOnError bool
	slices      int
	// signingFloor also measures, for JWT token requests, a ceiling that signs one ES256 token
	// per request: the floor of any JWT issuer on this machine.
	signingFloor bool
}

func newBenchCommand() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the server under load: token, introspect, revoke, mixed, resource, token-dpop, resource-dpop",
		Long: `Load-test an authorization server, the way redis-benchmark and pgbench do theirs.

By default (--embedded) it starts a server of its own, as a child process on a temporary data
directory, so the server's CPU seconds and peak RSS are measured apart from the load generator's.
--issuer targets a running server instead (with --client-id and the secret in
--client-secret-file or RESCIND_CLIENT_SECRET). --ceiling also measures a trivial handler that
parses the same form, in its own process, on the same machine in the same run, and reports each
scenario's ratio to it: absolute numbers vary between machines, the ratio does not. The measured
time is cut into --slices slices alternated between the ceiling and the server (ceiling, server,
server, ceiling, ...), so that a change of the machine's speed during the run falls on both alike.

Closed loop by default (each connection sends its next request when the last one answers);
--rate R switches to an open loop at R requests per second, with latency counted from each
request's scheduled time, so a slow server cannot hide its latency (coordinated omission).

Every scenario runs with each --token-format given (opaque, jwt or both: opaque,jwt), with a
client of that format. resource sends GET requests with a valid access token to a resource
server that checks it with the resource middleware (started as a process of its own, registered
as a resource server): JWTs are verified locally (first sight, then from its cache), opaque
tokens introspected (then cached). The embedded server uses SQLite in its data directory, or,
with --db postgres://..., a scratch database it creates on that PostgreSQL server and drops at
the end. --preload-revocations N writes N revoked, unexpired token and grant records straight
into the database before the server starts, and reports how long the server took to be ready
and its memory then. --fail-on-error makes any failed request an error (exit status 1), for CI;
timing never fails anything. "rescind bench report" turns the --json output of several runs
into the Markdown table of the README.

token-dpop is the token scenario with a DPoP proof (RFC 9449) on every request, made by the load
generator with one ES256 key, as a client would; resource-dpop calls a resource server that
runs the resource middleware (started as a process of its own) with a DPoP-bound token and a
fresh proof per request. Their ceilings get the same requests, proofs included.`,
		Example: `  rescind bench --embedded --ceiling --duration 10s
  rescind bench --ceiling --token-format opaque,jwt --scenarios token,introspect,revoke,mixed,resource
  rescind bench --ceiling --db postgres://postgres@/postgres?host=/run/postgresql --scenarios revoke
  rescind bench --preload-revocations 1000000 --scenarios introspect --duration 3s
  rescind bench --scenarios revoke --connections 64 --json
  rescind bench --ceiling --scenarios token-dpop,resource-dpop
  rescind bench --issuer https://auth.example --client-id ID --client-secret-file s.txt --scenarios introspect`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, f) },
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.embedded, "embedded", true, "start a server of its own (default, unless --issuer is given)")
	fl.BoolVar(&f.ceiling, "ceiling", false, "also measure a trivial form-parsing handler and report ratios to it")
	fl.StringVar(&f.issuer, "issuer", "", "target a running server at this issuer URL")
	fl.StringVar(&f.clientID, "client-id", os.Getenv("RESCIND_CLIENT_ID"), "client for --issuer (client_credentials)")
	fl.StringVar(&f.secretFile, "client-secret-file", "", "its secret (else RESCIND_CLIENT_SECRET)")
	fl.StringVar(&f.scenarios, "scenarios", "token,introspect,revoke,mixed", "comma-separated: token, introspect, revoke, mixed, resource, token-dpop, resource-dpop")
	fl.IntVarP(&f.connections, "connections", "c", 32, "concurrent connections")
	fl.DurationVarP(&f.duration, "duration", "d", 10*time.Second, "measured time per scenario")
	fl.DurationVar(&f.warmup, "warmup", 2*time.Second, "unmeasured time before each scenario")
	fl.IntVar(&f.rate, "rate", 0, "open loop: requests per second in total (0: closed loop)")
	fl.StringVar(&f.mix, "mix", "1:8:1", "mixed scenario ratio of token:introspect:revoke")
	fl.BoolVar(&f.jsonOut, "json", false, "print the results as JSON")
	fl.Int64Var(&f.maxRequests, "max-requests", 0, "stop a scenario after this many measured requests (0: run for --duration)")
	fl.StringVar(&f.tokenFormat, "token-format", "opaque", "access token formats to measure each scenario with: opaque, jwt, or opaque,jwt")
	fl.StringVar(&f.db, "db", "", "database of the embedded server: a postgres:// URL of a server where the bench may create a scratch database (default: SQLite)")
	fl.IntVar(&f.preload, "preload-revocations", 0, "write this many revoked, unexpired records into the embedded server's database before it starts")
	fl.IntVar(&f.slices, "slices", 6, "with --ceiling (closed loop), cut the measured time into this many slices alternated between the ceiling and the server")
	fl.BoolVar(&f.signingFloor, "signing-floor", false, "with --ceiling, also measure JWT token requests against a trivial handler that signs one ES256 token per request (the floor of JWT issuance)")
	fl.BoolVar(&f.failOnError, "fail-on-error", false, "exit with status 1 if any request failed (never for timing)")
	cmd.AddCommand(newBenchReportCommand())
	return cmd
}

// benchResult is one scenario's measurement.
type benchResult struct {
	Scenario    string           `json:"scenario"`
	Target      string           `json:"target"`
	TokenFormat string           `json:"token_format,omitempty"`
	Database    string           `json:"database,omitempty"`
	Requests    int64            `json:"requests"`
	Seconds     float64          `json:"seconds"`
	RPS         float64          `json:"rps"`
	P50ms       float64          `json:"p50_ms"`
	P90ms       float64          `json:"p90_ms"`
	P99ms       float64          `json:"p99_ms"`
	P999ms      float64          `json:"p999_ms"`
	Errors      map[string]int64 `json:"errors,omitempty"`
	CPUSeconds  float64          `json:"server_cpu_seconds,omitempty"`
	PeakRSSMiB  float64          `json:"server_peak_rss_mib,omitempty"`
	DataDirMiB  float64          `json:"server_data_dir_mib,omitempty"`
	CeilingRPS  float64          `json:"ceiling_rps,omitempty"`
	RatioRPS    float64          `json:"ratio_rps,omitempty"`
	RatioP99    float64          `json:"ratio_p99,omitempty"`
	Unavailable string           `json:"unavailable,omitempty"`
	// The embedded server's start: seconds from exec to its first ready /readyz, its RSS then,
	// and the revocation records written before it started (--preload-revocations).
	ReadySeconds float64 `json:"server_ready_seconds,omitempty"`
	ReadyRSSMiB  float64 `json:"server_ready_rss_mib,omitempty"`
	Preloaded    int     `json:"preloaded_revocations,omitempty"`
}

// benchScenarios are the scenarios `rescind bench` knows.
var benchScenarios = []string{"token", "introspect", "revoke", "mixed", "resource", "token-dpop", "resource-dpop"}

func runBench(cmd *cobra.Command, f benchFlags) error {
	ctx := cmd.Context()
	if f.connections < 1 || f.duration <= 0 || f.warmup < 0 || f.rate < 0 || f.preload < 0 || f.slices < 1 {
		return errors.New("--connections, --duration, --warmup, --rate, --slices and --preload-revocations must be positive")
	}
	mix, err := parseMix(f.mix)
	if err != nil {
		return err
	}
	scenarios := strings.Split(f.scenarios, ",")
	for _, s := range scenarios {
		if !slices.Contains(benchScenarios, s) {
			return fmt.Errorf("unknown scenario %q", s)
		}
	}
	formats := strings.Split(f.tokenFormat, ",")
	for _, tf := range formats {
		if tf != "opaque" && tf != "jwt" {
			return fmt.Errorf("--token-format: unknown format %q (opaque, jwt, or opaque,jwt)", tf)
		}
	}
	if f.issuer != "" && (f.db != "" || f.preload > 0) {
		return errors.New("--db and --preload-revocations are for the embedded server, not --issuer")
	}
	if f.db != "" && !isPostgres(f.db) {
		return errors.New("--db must be a postgres:// URL (the default is SQLite)")
	}
	// The targets: one per token format, all on the same server.
	var targets []benchTarget
	var srv benchServer
	if f.issuer != "" {
		sec := os.Getenv("RESCIND_CLIENT_SECRET")
		if f.secretFile != "" {
			b, err := os.ReadFile(f.secretFile)
			if err != nil {
				return err
			}
			sec = strings.TrimSpace(string(b))
		}
		md, err := client.Discover(ctx, f.issuer, nil)
		if err != nil {
			return err
		}
		t := benchTarget{name: f.issuer, tokenURL: md.TokenEndpoint, introURL: md.IntrospectionEndpoint,
			revokeURL: md.RevocationEndpoint, auth: client.BasicAuth(f.clientID, sec), issuer: md.Issuer, clientID: f.clientID, secret: sec}
		targets, srv.rs = []benchTarget{t}, t
	} else {
		srv, err = startBenchServer(ctx, cmd.ErrOrStderr(), f, formats, slices.Contains(scenarios, "resource") || slices.Contains(scenarios, "resource-dpop"))
		if err != nil {
			return err
		}
		defer srv.stop()
		targets = srv.targets
	}
	var ceiling *benchTarget
	if f.ceiling {
		proc, addr, err := startChild(ctx, "bench-ceiling", "--addr", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer proc.stop()
		ceiling = &benchTarget{name: "ceiling", tokenURL: "http://" + addr + "/", introURL: "http://" + addr + "/",
			revokeURL: "http://" + addr + "/", auth: client.BasicAuth("c", "s"), proc: proc, resourceURL: "http://" + addr + "/photos"}
	}
	var floor *benchTarget
	if f.ceiling && f.signingFloor && slices.Contains(formats, "jwt") && slices.Contains(scenarios, "token") {
		proc, addr, err := startChild(ctx, "bench-ceiling", "--addr", "127.0.0.1:0", "--sign")
		if err != nil {
			return err
		}
		defer proc.stop()
		floor = &benchTarget{name: "signing-floor", tokenURL: "http://" + addr + "/", auth: client.BasicAuth("c", "s"), proc: proc}
	}
	if slices.Contains(scenarios, "resource") || slices.Contains(scenarios, "resource-dpop") {
		// The resource server, in a process of its own, checks the targets' tokens.
		proc, addr, err := startResourceServer(ctx, srv.rs)
		if err != nil {
			return err
		}
		defer proc.stop()
		for i := range targets {
			targets[i].resourceURL, targets[i].resourceProc = "http://"+addr+"/photos", proc
		}
	}

	// The ceiling is sent the same forms: a token of the format measured, not a stand-in. A
	// running server's client has the format it has: told by its token.
	samples := make([]string, len(targets))
	for i, t := range targets {
		if toks := issue(ctx, &http.Client{Timeout: 30 * time.Second}, t, 1, 1); len(toks) == 1 {
			samples[i] = toks[0]
			if t.format == "" {
				targets[i].format = "opaque"
				if token.LooksLikeJWT(toks[0]) {
					targets[i].format = "jwt"
				}
			}
		}
	}
	progress := progressWriter(cmd.ErrOrStderr())
	var results []benchResult
	for _, sc := range scenarios {
		for i, t := range targets {
			var refs []benchTarget
			if ceiling != nil {
				cc := *ceiling
				cc.sample = samples[i]
				refs = append(refs, cc)
				if floor != nil && sc == "token" && t.format == "jwt" {
					refs = append(refs, *floor)
				}
			}
			r, refRes := runScenario(ctx, progress, f, t, refs, sc, mix)
			var ceil benchResult
			for j, rr := range refRes {
				rr.Scenario, rr.Target, rr.TokenFormat = sc, refs[j].name, t.format
				if j == 0 {
					ceil = rr
				} else if ceil.RPS > 0 {
					rr.CeilingRPS, rr.RatioRPS = ceil.RPS, rr.RPS/ceil.RPS
					if ceil.P99ms > 0 {
						rr.RatioP99 = rr.P99ms / ceil.P99ms
					}
				}
				results = append(results, rr)
			}
			r.TokenFormat, r.Database = t.format, srv.database
			r.ReadySeconds, r.ReadyRSSMiB, r.Preloaded = srv.ready.Seconds(), srv.readyRSS, srv.preloaded
			if ceiling != nil && ceil.RPS > 0 {
				r.CeilingRPS = ceil.RPS
				r.RatioRPS = r.RPS / ceil.RPS
				if ceil.P99ms > 0 {
					r.RatioP99 = r.P99ms / ceil.P99ms
				}
			}
			results = append(results, r)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if f.jsonOut {
		if err := printJSON(cmd.OutOrStdout(), results); err != nil {
			return err
		}
	} else {
		printBenchTable(cmd.OutOrStdout(), results, f, srv)
	}
	if f.failOnError {
		var failed []string
		for _, r := range results {
			for k, v := range r.Errors {
				failed = append(failed, fmt.Sprintf("%s %s %s: %s x%d", r.Scenario, r.Target, r.TokenFormat, k, v))
			}
		}
		if len(failed) > 0 {
			slices.Sort(failed)
			return fmt.Errorf("failed requests (--fail-on-error):\n  %s", strings.Join(failed, "\n  "))
		}
	}
	return nil
}

// progressWriter is where the live progress line ("\r...") goes: w if it is a terminal, else
// nowhere, so that piped or logged output is not flooded with carriage returns.
func progressWriter(w io.Writer) io.Writer {
	if isTerminal(w) {
		return w
	}
	return io.Discard
}

// isTerminal reports whether w is a character device: a terminal (or /dev/null, where the
// progress line does no harm either).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func parseMix(s string) ([3]int, error) {
	var m [3]int
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return m, errors.New("--mix must be token:introspect:revoke, e.g. 1:8:1")
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return m, errors.New("--mix must be three non-negative integers")
		}
		m[i] = n
	}
	if m[0]+m[1]+m[2] == 0 {
		return m, errors.New("--mix must not be all zero")
	}
	return m, nil
}

func printBenchTable(w io.Writer, rs []benchResult, f benchFlags, srv benchServer) {
	mode := "closed loop"
	if f.rate > 0 {
		mode = fmt.Sprintf("open loop at %d req/s", f.rate)
	}
	fmt.Fprintf(w, "rescind bench: %d connections, %s measured after %s warm-up, %s\n", f.connections, f.duration, f.warmup, mode)
	if srv.proc != nil {
		fmt.Fprintf(w, "server: %s, ready %.2f s after start with %d revocation records preloaded, RSS then %.0f MiB\n",
			srv.database, srv.ready.Seconds(), srv.preloaded, srv.readyRSS)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\tformat\trequests\treq/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\terrors\tsrv CPU s\tsrv RSS MiB\tdata MiB\tx ceiling req/s\tx ceiling p99\t")
	for _, r := range rs {
		errs := "0"
		if len(r.Errors) > 0 {
			var parts []string
			for k, v := range r.Errors {
				parts = append(parts, fmt.Sprintf("%s=%d", k, v))
			}
			slices.Sort(parts)
			errs = strings.Join(parts, ",")
		}
		ratio, ratioP := "", ""
		if r.RatioRPS > 0 {
			ratio = fmt.Sprintf("%.2f", r.RatioRPS)
			ratioP = fmt.Sprintf("%.2f", r.RatioP99)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%.1f\t%.0f\t%.1f\t%s\t%s\t\n", r.Scenario, r.Target, r.TokenFormat,
			r.Requests, r.RPS, r.P50ms, r.P90ms, r.P99ms, r.P999ms, errs, r.CPUSeconds, r.PeakRSSMiB, r.DataDirMiB, ratio, ratioP)
		if r.Unavailable != "" {
			defer fmt.Fprintf(w, "note: %s %s: %s\n", r.Scenario, r.Target, r.Unavailable)
		}
	}
	tw.Flush()
}

// benchTarget is where a scenario sends requests.
type benchTarget struct {
	name                          string
	tokenURL, introURL, revokeURL string
	auth                          string
	proc                          *childProc
	// format is the access token format of the target's client ("" for the ceiling).
	format string
	// sample is, for the ceiling, the token its requests carry: one of the format measured.
	sample string
	// For the resource scenario: the resource server's URL and process, and what it needs to
	// start.
	resourceURL              string
	resourceProc             *childProc
	issuer, clientID, secret string
}

// childProc is a child process (the embedded server or the ceiling handler).
type childProc struct {
	cmd *exec.Cmd
	dir string
}

func (p *childProc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
	}
	if p.dir != "" {
		os.RemoveAll(p.dir)
	}
}

// exited reports whether the child has exited (it is a zombie until waited for), from /proc.
func (p *childProc) exited() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// usage returns the child's CPU seconds and peak RSS so far, from /proc (Linux).
func (p *childProc) usage() (cpu float64, rssMiB float64) {
	if p == nil || p.cmd.Process == nil {
		return 0, 0
	}
	pid := p.cmd.Process.Pid
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i > 0 {
			fields := strings.Fields(s[i+2:])
			if len(fields) > 13 {
				ut, _ := strconv.ParseFloat(fields[11], 64)
				st, _ := strconv.ParseFloat(fields[12], 64)
				cpu = (ut + st) / 100 // USER_HZ
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				rssMiB = kb / 1024
			}
		}
	}
	return cpu, rssMiB
}

// benchEnv is the environment of a process the bench starts: this one's without any RESCIND_
// variable (a RESCIND_DB or RESCIND_CONFIG set on the host must not point the bench's server at a
// real database), plus env.
func benchEnv(env []string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RESCIND_") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// startChild runs this binary with args and waits for it to print its listening address.
func startChild(ctx context.Context, args ...string) (*childProc, string, error) {
	return startChildEnv(ctx, nil, args...)
}

// startChildEnv is startChild with env added to the child's environment.
func startChildEnv(ctx context.Context, env []string, args ...string) (*childProc, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = childAttr()
	cmd.Env = benchEnv(env)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	p := &childProc{cmd: cmd}
	line := make([]byte, 0, 64)
	buf := make([]byte, 1)
	for {
		if _, err := out.Read(buf); err != nil {
			p.stop()
			return nil, "", fmt.Errorf("%s did not start: %w", args[0], err)
		}
		if buf[0] == '\n' {
			break
		}
		line = append(line, buf[0])
	}
	go io.Copy(io.Discard, out)
	return p, strings.TrimSpace(string(line)), nil
}

// benchServer is the embedded server of a run.
type benchServer struct {
	proc *childProc
	// targets are the bench clients, one per token format; rs is the resource server's client.
	targets []benchTarget
	rs      benchTarget
	// database is "sqlite" or "postgres".
	database string
	// ready is the time from exec to the first ready /readyz, readyRSS the peak RSS until then
	// (MiB), preloaded the revocation records written before the start.
	ready     time.Duration
	readyRSS  float64
	preloaded int
	dropDB    func() // drops the scratch PostgreSQL database, if any
}

func (s benchServer) stop() {
	s.proc.stop()
	if s.dropDB != nil {
		s.dropDB()
	}
}

// startServe starts `rescind serve` on dataDir and a free port and waits until it is ready; if
// ready is not nil, it is set to the time from the start to the first 200 of /readyz. The
// process's dir is left empty (stop removes nothing).
func startServe(exe, dataDir string, env []string, ready *time.Duration) (*childProc, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(exe, "serve", "--addr", addr, "--data-dir", dataDir, "--log-level", "warn")
	cmd.SysProcAttr = childAttr()
	cmd.Env = benchEnv(env)
	cmd.Stderr = os.Stderr
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	proc := &childProc{cmd: cmd}
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if res, err := hc.Get("http://" + addr + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				if ready != nil {
					*ready = time.Since(started)
				}
				return proc, addr, nil
			}
		}
		if time.Now().After(deadline) {
			return proc, addr, errors.New("the embedded server did not become ready")
		}
		if proc.exited() {
			return proc, addr, errors.New("the embedded server exited")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startBenchServer starts `rescind serve` on a temporary data dir and a free port (on SQLite, or
// on a scratch database on the PostgreSQL server of f.db), after writing f.preload revocation
// records into its database, and creates a bench client for each token format and, if
// resource, a resource-server client.
func startBenchServer(ctx context.Context, logw io.Writer, f benchFlags, formats []string, resource bool) (srv benchServer, err error) {
	dir, err := os.MkdirTemp("", "rescind-bench")
	if err != nil {
		return srv, err
	}
	defer func() {
		if err != nil {
			srv.stop()
			os.RemoveAll(dir)
		}
	}()
	dataDir := filepath.Join(dir, "d")
	var env []string
	srv.database = "sqlite"
	var scratch string
	if f.db != "" {
		srv.database = "postgres"
		if scratch, srv.dropDB, err = scratchDatabase(ctx, f.db); err != nil {
			return srv, err
		}
		key := make([]byte, 32)
		rand.Read(key)
		env = append(env, "RESCIND_DB="+scratch, "RESCIND_SECRETS_KEY="+base64.StdEncoding.EncodeToString(key))
	}
	exe, err := os.Executable()
	if err != nil {
		return srv, err
	}
	if f.preload > 0 {
		// A deployment that holds that many revocations has started before, and made its keys
		// then (an RSA key takes up to a second): a first start, not measured, comes first.
		first, _, err := startServe(exe, dataDir, env, nil)
		if err != nil {
			return srv, fmt.Errorf("first start: %w", err)
		}
		first.stop()
		fmt.Fprintf(logw, "rescind bench: writing %d revocation records into the %s database...\n", f.preload, srv.database)
		if err := preloadRevocations(ctx, dataDir, scratch, f.preload); err != nil {
			return srv, err
		}
		srv.preloaded = f.preload
	}
	var addr string
	srv.proc, addr, err = startServe(exe, dataDir, env, &srv.ready)
	if srv.proc != nil {
		srv.proc.dir = dir
	}
	if err != nil {
		return srv, err
	}
	base := "http://" + addr
	_, srv.readyRSS = srv.proc.usage()
	adm := admin.NewUnixClient(filepath.Join(dataDir, "admin.sock"))
	for _, format := range formats {
		info, err := adm.CreateClient(ctx, admin.CreateClientRequest{Name: "bench " + format, Scope: "read write", TokenFormat: format})
		if err != nil {
			return srv, err
		}
		srv.targets = append(srv.targets, benchTarget{name: "rescind", format: format, tokenURL: base + "/oauth2/token",
			introURL: base + "/oauth2/introspect", revokeURL: base + "/oauth2/revoke", auth: client.BasicAuth(info.ClientID, info.ClientSecret),
			proc: srv.proc, issuer: base, clientID: info.ClientID, secret: info.ClientSecret})
	}
	if resource {
		info, err := adm.CreateClient(ctx, admin.CreateClientRequest{Name: "bench API", ResourceServer: true})
		if err != nil {
			return srv, err
		}
		srv.rs = benchTarget{issuer: base, clientID: info.ClientID, secret: info.ClientSecret}
	}
	return srv, nil
}

// preloadRevocations migrates the embedded server's database (SQLite in dataDir, or the
// PostgreSQL database pg) and writes n revocation records into it (package revfill).
func preloadRevocations(ctx context.Context, dataDir, pg string, n int) error {
	cfg := revfill.Config{N: n, Now: time.Now(), ExpiresAfter: time.Hour}
	if pg != "" {
		st, err := postgres.Open(ctx, pg)
		if err != nil {
			return err
		}
		st.Close()
		return revfill.FillPostgres(ctx, pg, cfg)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dataDir, "rescind.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	st.Close()
	return revfill.FillSQLite(ctx, path, cfg)
}

// scratchDatabase creates an empty database on the PostgreSQL server of dsn and returns its
// URL and a function that drops it.
func scratchDatabase(ctx context.Context, dsn string) (string, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("--db: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", nil, fmt.Errorf("--db: want a postgres:// URL, got %s", redactDSN(dsn))
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("--db: connecting to %s: %s", redactDSN(dsn), oneLine(err))
	}
	defer conn.Close(context.Background())
	b := make([]byte, 6)
	rand.Read(b)
	name := "rescind_bench_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("--db: the bench creates a scratch database on that server, and could not: %s", oneLine(err))
	}
	// The scratch database's name is the URL's only database: a dbname (or database) parameter
	// would override the path, and the bench would write into the database it was given.
	q := u.Query()
	q.Del("dbname")
	q.Del("database")
	u.RawQuery = q.Encode()
	u.Path = "/" + name
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, dsn); err == nil {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	}
	return u.String(), drop, nil
}

// newBenchCeilingCommand is the ceiling: a trivial handler that parses the form and answers a
// fixed small JSON, in its own process. Hidden: `rescind bench --ceiling` starts it.
func newBenchCeilingCommand() *cobra.Command {
	var addr string
	var sign bool
	cmd := &cobra.Command{
		Use:    "bench-ceiling",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			// With --sign, a token request is answered with a JWT access token signed as the
			// server signs its own (ES256, deterministic), with claims of the same size.
			var signer *token.Signer
			if sign {
				k, err := token.NewSigningKey("floor", token.AlgES256, time.Now())
				if err != nil {
					return err
				}
				signer = token.NewSigner(time.Hour, k)
			}
			fmt.Fprintln(cmd.OutOrStdout(), ln.Addr().String())
			srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err != nil {
					http.Error(w, "bad form", http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "no-store")
				if signer != nil && r.PostForm.Get("grant_type") != "" {
					now := time.Now()
					tok, err := signer.Sign(floorClaims(now), token.TypeAccessToken)
					if err != nil {
						http.Error(w, err.Error(), http.StatusInternalServerError)
						return
					}
					fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, tok)
					return
				}
				io.WriteString(w, `{"active":true,"access_token":"x","token_type":"Bearer","expires_in":3600}`)
			})}
			go func() { <-cmd.Context().Done(); srv.Close() }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "listen address")
	cmd.Flags().BoolVar(&sign, "sign", false, "answer token requests with an ES256 JWT access token signed per request")
	return cmd
}

// floorClaims are the claims of the signing floor's tokens: those of a client-credentials JWT
// access token of rescind's, with fresh random ids.
func floorClaims(now time.Time) token.AccessClaims {
	var b [16]byte
	rand.Read(b[:])
	id, name := base64.RawURLEncoding.EncodeToString(b[:]), hex.EncodeToString(b[:13]) // as long as a token id and a client id
	return token.AccessClaims{Issuer: "http://127.0.0.1:8080", Subject: name, Audience: token.Audience{"http://127.0.0.1:8080"},
		Expiry: now.Add(time.Hour).Unix(), IssuedAt: now.Unix(), ID: id, ClientID: name, Scope: "read write",
		Status: &token.Status{StatusList: token.StatusListRef{Idx: int64(b[0]) << 8, URI: "http://127.0.0.1:8080/oauth2/statuslists/" + name}}}
}

// request is one prepared request of a scenario.
type request struct {
	url  string
	body string
	kind string
	// method is the HTTP method; if empty, POST with the target's client authentication.
	method string
	// auth, if set, is the Authorization header; dpop, if set, the DPoP proof.
	auth, dpop string
}

// pool hands out tokens to introspect or revoke.
type pool struct {
	mu   sync.Mutex
	toks []string
	next int
}

func (p *pool) take(cycle bool) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.toks) == 0 {
		return "", false
	}
	if p.next >= len(p.toks) {
		if !cycle {
			return "", false
		}
		p.next = 0
	}
	t := p.toks[p.next]
	p.next++
	return t, true
}

// issue gets n tokens from the target, with c connections.
func issue(ctx context.Context, hc *http.Client, t benchTarget, n, c int) []string {
	out := make([]string, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				_, body, err := send(hc, t, request{url: t.tokenURL, body: "grant_type=client_credentials"})
				if err != nil {
					continue
				}
				var tr struct {
					AccessToken string `json:"access_token"`
				}
				tok := ""
				if json.Unmarshal(body, &tr) == nil {
					tok = tr.AccessToken
				}
				if t.name == "ceiling" {
					tok = "x" // the ceiling's answer carries no real token
					if t.sample != "" {
						tok = t.sample
					}
				}
				if tok != "" {
					mu.Lock()
					out = append(out, tok)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return out
}

func send(hc *http.Client, t benchTarget, r request) (int, []byte, error) {
	status, _, body, err := sendFull(hc, t, r)
	return status, body, err
}

// sendFull sends r and returns the status, headers and body of the answer.
func sendFull(hc *http.Client, t benchTarget, r request) (int, http.Header, []byte, error) {
	method, auth := r.method, r.auth
	if method == "" {
		method = http.MethodPost
	}
	if auth == "" {
		auth = t.auth
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(method, r.url, body)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Authorization", auth)
	if r.dpop != "" {
		req.Header.Set("DPoP", r.dpop)
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header, b, err
}

// scenarioRun is one scenario against one target: its tokens, its connections, and what its
// measured slices recorded so far. With --ceiling, the measured time is cut into slices
// alternated with the ceiling's, so that both are measured on the same machine at the same time
// (a shared machine's speed drifts by tens of per cent within a minute).
type scenarioRun struct {
	f        benchFlags
	t        benchTarget
	sc       string
	progress io.Writer
	// proc is the process whose CPU is counted: the server, or the resource server.
	proc *childProc
	tr   *http.Transport
	// next makes the i-th request; do sends it.
	next func(int64) (request, bool)
	do   func(request) (int, error)

	seq     atomic.Int64
	stopped atomic.Bool
	done    atomic.Int64
	mu      sync.Mutex // guards lats and res.Errors
	lats    []time.Duration
	res     benchResult
	cpu     float64
}

// newScenarioRun prepares sc against t: the tokens it introspects or revokes are issued now,
// before any clock starts. If the scenario cannot run, its result says why (Unavailable).
func newScenarioRun(ctx context.Context, progress io.Writer, f benchFlags, t benchTarget, sc string, mix [3]int) *scenarioRun {
	tr := &http.Transport{MaxIdleConns: f.connections * 2, MaxIdleConnsPerHost: f.connections * 2, MaxConnsPerHost: f.connections,
		IdleConnTimeout: time.Minute, DisableCompression: true}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	s := &scenarioRun{f: f, t: t, sc: sc, progress: progress, tr: tr, proc: t.proc,
		res: benchResult{Scenario: sc, Target: t.name, Errors: map[string]int64{}}, lats: make([]time.Duration, 0, 1<<20)}
	// The process measured: the server, or, for resource and resource-dpop, the resource server.
	if (sc == "resource" || sc == "resource-dpop") && t.resourceProc != nil {
		s.proc = t.resourceProc
	}

	// Tokens to introspect and revoke, issued before the clock starts. Those that could not be
	// issued count as errors.
	var intro, revoke pool
	issueAll := func(n int) []string {
		toks := issue(ctx, hc, t, n, f.connections)
		if len(toks) < n && ctx.Err() == nil {
			s.res.Errors["issue:failed"] += int64(n - len(toks))
		}
		return toks
	}
	total := f.duration + f.warmup
	switch sc {
	case "introspect", "resource":
		intro.toks = issueAll(2000)
	case "revoke":
		fmt.Fprintf(progress, "\r%-10s %-8s issuing tokens to revoke...", sc, t.name)
		n := int(total.Seconds() * 15000)
		if f.maxRequests > 0 {
			n = min(n, int(f.maxRequests)+int(f.warmup.Seconds()*15000)+1000)
		}
		if t.name == "ceiling" {
			n = 2000 // they go round
		}
		revoke.toks = issueAll(n)
	case "mixed":
		intro.toks = issueAll(2000)
		revoke.toks = issueAll(int(total.Seconds() * 3000))
	}
	// DPoP: one key, as one client has; the servers' latest nonces, if they demand them.
	var (
		key                *dpop.Key
		tokNonce, resNonce atomic.Pointer[string]
		boundToken         = "x" // the ceiling accepts anything
	)
	if sc == "token-dpop" || sc == "resource-dpop" {
		var err error
		if key, err = dpop.GenerateKey(dpop.ES256); err != nil {
			s.res.Unavailable = err.Error()
			return s
		}
	}
	if sc == "resource-dpop" && t.name != "ceiling" {
		tok, err := boundTokenFor(hc, t, key)
		if err != nil {
			s.res.Unavailable = "no DPoP-bound token: " + err.Error()
			return s
		}
		boundToken = tok
	}
	nonceOf := func(p *atomic.Pointer[string]) string {
		if n := p.Load(); n != nil {
			return *n
		}
		return ""
	}
	// do sends r and keeps the DPoP nonce a server sends.
	do := func(r request) (int, error) {
		status, h, _, err := sendFull(hc, t, r)
		if n := h.Get("DPoP-Nonce"); n != "" && r.dpop != "" {
			if r.kind == "resource-dpop" {
				resNonce.Store(&n)
			} else {
				tokNonce.Store(&n)
			}
		}
		return status, err
	}
	weights := mix
	next := func(i int64) (request, bool) {
		kind := sc
		if sc == "mixed" {
			n := int(i % int64(weights[0]+weights[1]+weights[2]))
			switch {
			case n < weights[0]:
				kind = "token"
			case n < weights[0]+weights[1]:
				kind = "introspect"
			default:
				kind = "revoke"
			}
		}
		switch kind {
		case "token":
			return request{url: t.tokenURL, body: "grant_type=client_credentials", kind: kind}, true
		case "token-dpop":
			p, err := key.Proof(http.MethodPost, t.tokenURL, dpop.ProofOptions{Nonce: nonceOf(&tokNonce)})
			return request{url: t.tokenURL, body: "grant_type=client_credentials", kind: kind, dpop: p}, err == nil
		case "resource-dpop":
			p, err := key.Proof(http.MethodGet, t.resourceURL, dpop.ProofOptions{Nonce: nonceOf(&resNonce), AccessToken: boundToken})
			return request{method: http.MethodGet, url: t.resourceURL, auth: "DPoP " + boundToken, kind: kind, dpop: p}, err == nil
		case "introspect":
			tok, ok := intro.take(true)
			return request{url: t.introURL, body: "token=" + url.QueryEscape(tok), kind: kind}, ok
		case "resource":
			tok, ok := intro.take(true)
			return request{method: http.MethodGet, url: t.resourceURL, auth: "Bearer " + tok, kind: kind}, ok
		default:
			// The ceiling revokes nothing: its dummy tokens go round, so it never runs out.
			tok, ok := revoke.take(t.name == "ceiling")
			return request{url: t.revokeURL, body: "token=" + url.QueryEscape(tok) + "&token_type_hint=access_token", kind: kind}, ok
		}
	}

	s.next, s.do = next, do
	return s
}

// record counts one answer of the slice being measured.
func (s *scenarioRun) record(start time.Time, status int, err error, kind string) {
	d := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || status != http.StatusOK {
		key := kind + ":" + strconv.Itoa(status)
		if err != nil {
			key = kind + ":transport"
		}
		s.res.Errors[key]++
	}
	s.lats = append(s.lats, d)
	s.done.Add(1)
}

// slice runs the scenario for d: measured (its answers, time and the server's CPU counted) or
// not (a warm-up). Every request sent in the slice counts, those still in flight at its end
// included: the slice lasts until they are answered (cutting them off would drop the slowest
// answers and count against the slower party). It stops early when the tokens to revoke run
// out, --max-requests is reached or ctx ends.
func (s *scenarioRun) slice(ctx context.Context, d time.Duration, measure bool) {
	if s.res.Unavailable != "" || s.stopped.Load() || d <= 0 || ctx.Err() != nil ||
		(measure && s.f.maxRequests > 0 && s.done.Load() >= s.f.maxRequests) {
		return
	}
	f := s.f
	var measuring atomic.Bool
	measuring.Store(measure)
	record := func(start time.Time, status int, err error, kind string) {
		if measuring.Load() {
			s.record(start, status, err, kind)
		}
	}
	var cpu0 float64
	if measure {
		cpu0, _ = s.proc.usage()
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if f.rate > 0 {
		// Open loop: requests are scheduled at a fixed rate; latency counts from the schedule.
		work := make(chan time.Time, f.connections*64)
		for range f.connections {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for sched := range work {
					r, ok := s.next(s.seq.Add(1))
					if !ok {
						s.stopped.Store(true)
						continue
					}
					status, err := s.do(r)
					record(sched, status, err, r.kind)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(work)
			interval := time.Second / time.Duration(f.rate)
			start := time.Now()
			for i := int64(0); runCtx.Err() == nil; i++ {
				sched := start.Add(time.Duration(i) * interval)
				if d := time.Until(sched); d > 0 {
					time.Sleep(d)
				}
				select {
				case work <- sched:
				default:
					if measuring.Load() {
						s.mu.Lock()
						s.res.Errors["dropped:queue_full"]++
						s.mu.Unlock()
					}
				}
			}
		}()
	} else {
		for range f.connections {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for runCtx.Err() == nil {
					r, ok := s.next(s.seq.Add(1))
					if !ok {
						s.stopped.Store(true)
						return
					}
					start := time.Now()
					status, err := s.do(r)
					record(start, status, err, r.kind)
				}
			}()
		}
	}
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	for running := true; running; {
		select {
		case <-tick.C:
			el := time.Since(start)
			if measure {
				fmt.Fprintf(s.progress, "\r%-10s %-8s %5.1fs  %8.0f req/s   ", s.sc, s.t.name, s.res.Seconds+el.Seconds(),
					float64(s.done.Load())/(s.res.Seconds+el.Seconds()))
			}
			if el >= d || s.stopped.Load() || (measure && f.maxRequests > 0 && s.done.Load() >= f.maxRequests) {
				running = false
			}
		case <-ctx.Done():
			running = false
		}
	}
	tick.Stop()
	cancel() // no new request; those sent are waited for, and counted
	wg.Wait()
	measuring.Store(false)
	el := time.Since(start)
	if measure {
		s.res.Seconds += el.Seconds()
		cpu1, _ := s.proc.usage()
		s.cpu += cpu1 - cpu0
	}
}

// finish closes the run's connections and sums up what its measured slices recorded.
func (s *scenarioRun) finish() benchResult {
	fmt.Fprint(s.progress, "\r"+strings.Repeat(" ", 60)+"\r")
	s.tr.CloseIdleConnections()
	res := s.res
	if s.proc != nil {
		_, rss := s.proc.usage()
		res.CPUSeconds, res.PeakRSSMiB = s.cpu, rss
		if s.proc.dir != "" {
			res.DataDirMiB = dirSize(s.proc.dir) / (1 << 20)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lats := s.lats
	res.Requests = int64(len(lats))
	if res.Seconds > 0 {
		res.RPS = float64(res.Requests) / res.Seconds
	}
	if s.stopped.Load() && s.sc == "revoke" {
		res.Unavailable = "ran out of tokens to revoke before the end"
	}
	if len(lats) > 0 {
		slices.Sort(lats)
		q := func(p float64) float64 {
			i := int(float64(len(lats)-1) * p)
			return float64(lats[i].Microseconds()) / 1000
		}
		res.P50ms, res.P90ms, res.P99ms, res.P999ms = q(0.50), q(0.90), q(0.99), q(0.999)
	}
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	return res
}

// runScenario measures one scenario against one target and against each of refs (the ceiling
// first) with the same requests: each warmed up, then the measured time cut into --slices slices
// in which every party runs in turn, the order reversed every other slice (ceiling, target;
// target, ceiling; ...), so that a drift of the machine's speed falls on all alike. It returns
// the target's result and each reference's, in the order of refs.
func runScenario(ctx context.Context, progress io.Writer, f benchFlags, t benchTarget, refs []benchTarget, sc string, mix [3]int) (benchResult, []benchResult) {
	var parties []*scenarioRun
	for _, rt := range refs {
		parties = append(parties, newScenarioRun(ctx, progress, f, rt, sc, mix))
	}
	run := newScenarioRun(ctx, progress, f, t, sc, mix)
	parties = append(parties, run)
	for _, p := range parties {
		p.slice(ctx, f.warmup, false)
	}
	// An open loop (--rate) is one slice: its schedule runs from the start of the measured time.
	n := 1
	if len(parties) > 1 && f.rate == 0 {
		n = max(f.slices, 1)
	}
	part := f.duration / time.Duration(n)
	for i := range n {
		order := slices.Clone(parties)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, p := range order {
			p.slice(ctx, part, true)
		}
	}
	out := make([]benchResult, len(refs))
	for j := range refs {
		out[j] = parties[j].finish()
	}
	return run.finish(), out
}

// dirSize returns the total size of the files under dir, in bytes.
func dirSize(dir string) float64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
				total += fi.Size()
			}
		}
		return nil
	})
	return float64(total)
}

// boundTokenFor gets a DPoP-bound access token for key from t's token endpoint (client
// credentials), answering a use_dpop_nonce once.
func boundTokenFor(hc *http.Client, t benchTarget, key *dpop.Key) (string, error) {
	nonce := ""
	for range 2 {
		p, err := key.Proof(http.MethodPost, t.tokenURL, dpop.ProofOptions{Nonce: nonce})
		if err != nil {
			return "", err
		}
		status, h, body, err := sendFull(hc, t, request{url: t.tokenURL, body: "grant_type=client_credentials", dpop: p})
		if err != nil {
			return "", err
		}
		var tr struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			Error       string `json:"error"`
		}
		json.Unmarshal(body, &tr)
		if status == http.StatusOK && tr.TokenType == "DPoP" {
			return tr.AccessToken, nil
		}
		if tr.Error != dpop.CodeUseNonce || h.Get("DPoP-Nonce") == "" {
			return "", fmt.Errorf("HTTP %d %s", status, body)
		}
		nonce = h.Get("DPoP-Nonce")
	}
	return "", errors.New("the server asked for a nonce twice")
}

// startResourceServer starts `rescind bench-resource` for t: the resource middleware, checking
// tokens of t's issuer, with t's client for introspection and events (in the embedded run a
// client registered as a resource server).
func startResourceServer(ctx context.Context, t benchTarget) (*childProc, string, error) {
	return startChildEnv(ctx, []string{"RESCIND_CLIENT_SECRET=" + t.secret}, "bench-resource", "--issuer", t.issuer,
		"--client-id", t.clientID, "--addr", "127.0.0.1:0")
}

// newBenchResourceCommand is the resource server of the resource and resource-dpop scenarios:
// GET /photos behind the resource middleware, in its own process. Hidden: `rescind bench` starts it.
func newBenchResourceCommand() *cobra.Command {
	var addr, issuer, clientID string
	cmd := &cobra.Command{
		Use:    "bench-resource",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			defer ln.Close()
			// Proofs name the URL the bench sends to: the address just bound.
			mw, err := resource.New(cmd.Context(), resource.Config{Issuer: issuer, ClientID: clientID,
				ClientSecret: os.Getenv("RESCIND_CLIENT_SECRET"), Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
				BaseURL: "http://" + ln.Addr().String()})
			if err != nil {
				return err
			}
			defer mw.Close()
			fmt.Fprintln(cmd.OutOrStdout(), ln.Addr().String())
			srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"photos":["cat.jpg"]}`)
			}))}
			go func() { <-cmd.Context().Done(); srv.Close() }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "listen address")
	cmd.Flags().StringVar(&issuer, "issuer", "", "the authorization server")
	cmd.Flags().StringVar(&clientID, "client-id", "", "the client that introspects (secret in RESCIND_CLIENT_SECRET)")
	return cmd
}
