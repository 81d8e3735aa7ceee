package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rescind/rescind/internal/pgtest"
	"github.com/rescind/rescind/token"
)

// runBenchJSON runs `rescind bench ... --json` and returns its results; it fails the test if
// the bench fails.
func runBenchJSON(t *testing.T, args ...string) []benchResult {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"bench", "--json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench %s: %v\n%s\n%s", strings.Join(args, " "), err, out, stderr.String())
	}
	var rs []benchResult
	if err := json.Unmarshal(out, &rs); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	return rs
}

// TestBenchEveryScenarioBothFormats: every scenario, the resource one included, runs with each
// token format against the embedded server and the ceiling, which is sent tokens of the same
// format; no request fails (--fail-on-error would say), and each row says what it measured.
func TestBenchEveryScenarioBothFormats(t *testing.T) {
	rs := runBenchJSON(t, "--ceiling", "--duration", "300ms", "--warmup", "100ms", "--connections", "4",
		"--scenarios", "token,introspect,revoke,mixed,resource", "--token-format", "opaque,jwt", "--fail-on-error")
	if len(rs) != 5*2*2 {
		t.Fatalf("%d results; want 5 scenarios x 2 formats x (ceiling, rescind)", len(rs))
	}
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.Scenario+"/"+r.TokenFormat+"/"+r.Target] = true
		if r.Requests == 0 || r.RPS <= 0 || len(r.Errors) != 0 {
			t.Fatalf("result %+v", r)
		}
		if r.Target == "rescind" && (r.RatioRPS <= 0 || r.CPUSeconds <= 0 || r.PeakRSSMiB <= 0 || r.Database != "sqlite" || r.ReadySeconds <= 0) {
			t.Fatalf("rescind result lacks ratios or server figures: %+v", r)
		}
	}
	for _, sc := range []string{"token", "introspect", "revoke", "mixed", "resource"} {
		for _, f := range []string{"opaque", "jwt"} {
			if !seen[sc+"/"+f+"/rescind"] || !seen[sc+"/"+f+"/ceiling"] {
				t.Fatalf("no %s/%s result against both targets: %v", sc, f, seen)
			}
		}
	}
}

// TestBenchPreloadAndPostgres: --preload-revocations writes the records before the server
// starts, and the server starts with them (reporting its time to ready and memory); with --db
// the embedded server runs on a scratch PostgreSQL database that is gone afterwards.
func TestBenchPreloadAndPostgres(t *testing.T) {
	rs := runBenchJSON(t, "--duration", "300ms", "--warmup", "100ms", "--connections", "4", "--scenarios", "introspect",
		"--preload-revocations", "20000")
	if len(rs) != 1 || rs[0].Preloaded != 20000 || rs[0].ReadySeconds <= 0 || rs[0].ReadyRSSMiB <= 0 || len(rs[0].Errors) != 0 {
		t.Fatalf("SQLite with 20,000 preloaded: %+v", rs)
	}
	dsn := pgtest.NewDatabase(t)
	scratch := func() []string {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		rows, _ := conn.Query(context.Background(), `SELECT datname FROM pg_database WHERE datname LIKE 'rescind_bench_%'`)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	before := scratch()
	rs = runBenchJSON(t, "--duration", "300ms", "--warmup", "100ms", "--connections", "4", "--scenarios", "token,revoke",
		"--token-format", "opaque,jwt", "--db", dsn, "--preload-revocations", "5000", "--fail-on-error")
	if len(rs) != 4 {
		t.Fatalf("%d results; want 2 scenarios x 2 formats", len(rs))
	}
	for _, r := range rs {
		if r.Database != "postgres" || r.Preloaded != 5000 || r.Requests == 0 || len(r.Errors) != 0 {
			t.Fatalf("PostgreSQL result %+v", r)
		}
	}
	if after := scratch(); len(after) != len(before) {
		t.Fatalf("scratch databases before the bench %v, after %v: not dropped", before, after)
	}
}

// TestBenchFailOnError: with --fail-on-error, failed requests (here: a wrong client secret)
// make the bench fail and name them; without it, they are reported and it succeeds.
func TestBenchFailOnError(t *testing.T) {
	dir := shortTempDir(t)
	s := startServer(t, filepath.Join(dir, "d"), nil)
	env := []string{"RESCIND_CLIENT_SECRET=wrong"}
	args := []string{"bench", "--issuer", s.url, "--client-id", "nobody", "--duration", "200ms", "--warmup", "50ms",
		"--connections", "2", "--scenarios", "token,introspect"}
	out, errOut, err := runCLI(env, append(args, "--json")...)
	if err != nil {
		t.Fatalf("without --fail-on-error: %v\n%s\n%s", err, out, errOut)
	}
	var rs []benchResult
	if json.Unmarshal([]byte(out), &rs) != nil || len(rs) != 2 || len(rs[0].Errors) == 0 || rs[1].Errors["issue:failed"] != 2000 {
		t.Fatalf("the failed requests are not reported: %s", out)
	}
	_, errOut, err = runCLI(env, append(args, "--fail-on-error")...)
	if err == nil || !strings.Contains(errOut, "failed requests") || !strings.Contains(errOut, "issue:failed") {
		t.Fatalf("with --fail-on-error: %v\n%s", err, errOut)
	}
}

// TestBenchReport: `rescind bench report` turns the --json output of runs into the README's
// Markdown table: per scenario and format, the median over the runs and their range.
func TestBenchReport(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, rps := range []float64{1000, 3000, 2000} {
		rs := []benchResult{
			{Scenario: "token", Target: "ceiling", TokenFormat: "jwt", RPS: rps * 2, P99ms: 4},
			{Scenario: "token", Target: "rescind", TokenFormat: "jwt", Database: "sqlite", RPS: rps, P99ms: float64(8 + i),
				RatioRPS: 0.5, RatioP99: 2, PeakRSSMiB: float64(60 + i), ReadySeconds: 0.5 + float64(i)/10, ReadyRSSMiB: 90, Preloaded: 1000000},
			{Scenario: "revoke", Target: "rescind", TokenFormat: "opaque", Database: "sqlite", RPS: rps * 3, P99ms: 12.25,
				RatioRPS: 0.25 * float64(i+1), RatioP99: 3},
		}
		b, _ := json.Marshal(rs)
		name := filepath.Join(dir, "run"+string(rune('1'+i))+".json")
		os.WriteFile(name, b, 0o600)
		files = append(files, name)
	}
	out := cli(t, nil, append([]string{"bench", "report"}, files...)...)
	want := `Median of 3 runs (min-max).

| operation | token format | rescind req/s | ratio to ceiling | rescind p99 | p99 / ceiling p99 |
|---|---|---|---|---|---|
| client_credentials token | jwt | 2,000 (1,000-3,000) | 0.50 (0.50-0.50) | 9.00 ms (8.00 ms-10.0 ms) | 2.00 (2.00-2.00) |
| revocation of distinct tokens, durable before the 200 | opaque | 6,000 (3,000-9,000) | 0.50 (0.25-0.75) | 12.2 ms (12.2 ms-12.2 ms) | 3.00 (3.00-3.00) |

Start-up (sqlite): ready 0.60 (0.50-0.70) s after exec with 1,000,000 revocation records preloaded; peak RSS until ready 90 (90-90) MiB.
Server peak RSS over these runs: 62 MiB.
`
	if out != want {
		t.Fatalf("report:\n%s\nwant:\n%s", out, want)
	}
	if _, errOut, err := runCLI(nil, "bench", "report", filepath.Join(dir, "missing.json")); err == nil {
		t.Fatalf("a missing file: no error (%s)", errOut)
	}
}

// TestBenchLeavesGivenDatabasesAlone: the bench writes only into a database of its own. A
// dbname parameter in --db (which pgx prefers to the URL's path) does not make it use the
// database named there, and a RESCIND_DB set in its environment does not reach the server it
// starts (audit of issue 20, finding 1): the database given stays empty, not even migrated.
func TestBenchLeavesGivenDatabasesAlone(t *testing.T) {
	given := pgtest.NewDatabase(t)
	u, err := url.Parse(given)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("dbname", strings.TrimPrefix(u.Path, "/"))
	u.RawQuery = q.Encode()
	tables := func() int {
		conn, err := pgx.Connect(context.Background(), given)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rs := runBenchJSON(t, "--duration", "200ms", "--warmup", "0s", "--connections", "2", "--scenarios", "token",
		"--token-format", "opaque", "--db", u.String(), "--preload-revocations", "100", "--fail-on-error")
	if len(rs) != 1 || rs[0].Requests == 0 {
		t.Fatalf("bench --db with dbname: %+v", rs)
	}
	if n := tables(); n != 0 {
		t.Fatalf("the bench with --db naming the database in a dbname parameter wrote %d tables into it", n)
	}
	t.Setenv("RESCIND_DB", given)
	t.Setenv("RESCIND_SECRETS_KEY", strings.Repeat("k", 44))
	rs = runBenchJSON(t, "--duration", "200ms", "--warmup", "0s", "--connections", "2", "--scenarios", "token",
		"--token-format", "opaque", "--fail-on-error")
	if len(rs) != 1 || rs[0].Requests == 0 || rs[0].Database != "sqlite" {
		t.Fatalf("bench with RESCIND_DB set: %+v", rs)
	}
	if n := tables(); n != 0 {
		t.Fatalf("the bench's SQLite server followed RESCIND_DB and wrote %d tables into that database", n)
	}
}

// TestBenchSigningFloor: --signing-floor adds, to JWT token requests only, a third party measured
// in the same slices as the ceiling and the server: a handler whose answers carry a real ES256
// JWT access token signed per request (not a stand-in), with its ratio to the ceiling.
func TestBenchSigningFloor(t *testing.T) {
	rs := runBenchJSON(t, "--ceiling", "--signing-floor", "--slices", "3", "--duration", "300ms", "--warmup", "100ms",
		"--connections", "4", "--scenarios", "token,introspect", "--token-format", "opaque,jwt", "--fail-on-error")
	var floors []benchResult
	for _, r := range rs {
		if r.Target == "signing-floor" {
			floors = append(floors, r)
		}
	}
	if len(rs) != 2*2*2+1 || len(floors) != 1 {
		t.Fatalf("%d results, %d of the floor; want 2 scenarios x 2 formats x (ceiling, rescind) and one floor: %+v", len(rs), len(floors), rs)
	}
	if f := floors[0]; f.Scenario != "token" || f.TokenFormat != "jwt" || f.Requests == 0 || f.RatioRPS <= 0 || f.CPUSeconds <= 0 {
		t.Fatalf("floor result %+v", f)
	}

	// What the floor answers: a JWT access token, ES256, a fresh one per request.
	cmd := exec.Command(binary, "bench-ceiling", "--addr", "127.0.0.1:0", "--sign")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("the floor printed no address: %v", err)
	}
	addr := strings.TrimSpace(line)
	seen := map[string]bool{}
	for range 2 {
		res, err := http.PostForm("http://"+addr+"/", url.Values{"grant_type": {"client_credentials"}})
		if err != nil {
			t.Fatal(err)
		}
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(res.Body).Decode(&tr)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		jws, err := token.ParseJWS(tr.AccessToken)
		if err != nil || jws.Alg != token.AlgES256 || jws.Typ != token.TypeAccessToken {
			t.Fatalf("floor answered %q: %v", tr.AccessToken, err)
		}
		seen[tr.AccessToken] = true
	}
	if len(seen) != 2 {
		t.Fatal("the floor answered the same token twice: it must sign per request")
	}
}

// TestBenchSlicesCountEveryRequest: with the measured time cut into slices, every request a
// party sends is counted, those in flight at a slice's end included (cutting them off would drop
// the slowest answers, and more of the slower party's): with no warm-up, what each server
// answered is what the bench counted.
func TestBenchSlicesCountEveryRequest(t *testing.T) {
	serve := func(d time.Duration, n *atomic.Int64) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(d)
			n.Add(1)
			io.WriteString(w, `{"access_token":"x"}`)
		}))
		t.Cleanup(s.Close)
		return s
	}
	var fastN, slowN atomic.Int64
	fast, slow := serve(0, &fastN), serve(20*time.Millisecond, &slowN)
	f := benchFlags{connections: 4, duration: 600 * time.Millisecond, slices: 3}
	r, refs := runScenario(context.Background(), io.Discard, f, benchTarget{name: "rescind", tokenURL: slow.URL + "/"},
		[]benchTarget{{name: "ceiling", tokenURL: fast.URL + "/"}}, "token", [3]int{1, 8, 1})
	if r.Requests == 0 || r.Requests != slowN.Load() || refs[0].Requests != fastN.Load() {
		t.Fatalf("counted %d and %d requests; the servers answered %d and %d", r.Requests, refs[0].Requests, slowN.Load(), fastN.Load())
	}
}
