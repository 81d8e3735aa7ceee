package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rescind/rescind/internal/pgtest"
	"github.com/rescind/rescind/internal/testenv"
)

// readmeBlock is a fenced code block of the README.
type readmeBlock struct {
	section string // the "## " heading it is under
	lang    string // the fence's info string: sh, go, yaml...
	body    string
	skip    string // why it is not run, when a readme-test comment says so
	line    int    // 1-based line of its opening fence
}

var (
	skipNext    = regexp.MustCompile(`^<!-- readme-test: not run \((.+)\) -->$`)
	skipSection = regexp.MustCompile(`^<!-- readme-test: section not run \((.+)\) -->$`)
)

// parseReadme returns the README's fenced blocks. A comment `<!-- readme-test: not run (why) -->`
// marks the next block as not runnable; `<!-- readme-test: section not run (why) -->` marks every
// block up to the next "## " heading.
func parseReadme(text string) []readmeBlock {
	var blocks []readmeBlock
	var cur *readmeBlock
	var section, nextSkip, sectionSkip string
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur != nil {
			if trimmed == "```" {
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			cur.body += line + "\n"
			continue
		}
		switch {
		case strings.HasPrefix(line, "## "):
			section, sectionSkip = strings.TrimPrefix(line, "## "), ""
		case skipNext.MatchString(trimmed):
			nextSkip = skipNext.FindStringSubmatch(trimmed)[1]
		case skipSection.MatchString(trimmed):
			sectionSkip = skipSection.FindStringSubmatch(trimmed)[1]
		case strings.HasPrefix(trimmed, "```"):
			cur = &readmeBlock{section: section, lang: strings.TrimPrefix(trimmed, "```"), line: i + 1, skip: nextSkip}
			if sectionSkip != "" {
				cur.skip = sectionSkip
			}
			nextSkip = ""
		}
	}
	return blocks
}

func (b readmeBlock) runnable() bool { return (b.lang == "sh" || b.lang == "bash") && b.skip == "" }

var (
	goRun     = regexp.MustCompile(`go run \./([\w./-]+)`)
	goBuild   = regexp.MustCompile(`go build -o (\S+) \./([\w./-]+)`)
	loopback  = regexp.MustCompile(`127\.0\.0\.1:(\d{4,5})\b`)
	databases = regexp.MustCompile(`RESCIND_DB='[^']*'`)
)

// TestReadme runs every runnable shell block of the README, top to bottom, in one shell as a
// user pasting them into one terminal would, in a temporary directory, against a server started
// as the quick start says (./rescind-data). The binaries the README runs with `go run` or builds
// with `go build` are built beforehand and put on PATH; every port is one the test picked. Each
// section's output is checked where it says what to expect.
func TestReadme(t *testing.T) {
	for _, tool := range []string{"curl", "jq", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, tool, tool+" is not installed")
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := parseReadme(string(readme))
	var run []readmeBlock
	var skipped []string
	for _, b := range blocks {
		switch {
		case b.runnable():
			run = append(run, b)
		case b.skip != "" && (b.lang == "sh" || b.lang == "bash"):
			skipped = append(skipped, fmt.Sprintf("line %d (%s): %s", b.line, b.section, b.skip))
		}
	}
	if len(run) < 8 {
		t.Fatalf("only %d runnable blocks found: has the README's shape changed?", len(run))
	}
	t.Logf("%d blocks run, %d not run:\n  %s", len(run), len(skipped), strings.Join(skipped, "\n  "))

	dir := shortTempDir(t)
	bin := filepath.Join(dir, ".bin")
	os.MkdirAll(bin, 0o700)
	script := ""
	for i, b := range run {
		script += fmt.Sprintf("echo '@@block %d@@'\n%s", i, b.body)
	}
	// The binaries, built once: the rescind binary of the other tests, and any other package
	// the README runs or builds.
	pkgs := map[string]bool{}
	for _, m := range goRun.FindAllStringSubmatch(script, -1) {
		pkgs[m[1]] = true
	}
	for _, m := range goBuild.FindAllStringSubmatch(script, -1) {
		pkgs[m[2]] = true
	}
	for pkg := range pkgs {
		out := filepath.Join(bin, filepath.Base(pkg))
		if pkg == "cmd/rescind" {
			copyExecutable(t, binary, out)
			continue
		}
		if b, err := exec.Command("go", "build", "-o", out, "../../"+pkg).CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, b)
		}
	}
	script = goBuild.ReplaceAllStringFunc(script, func(s string) string {
		m := goBuild.FindStringSubmatch(s)
		return fmt.Sprintf("cp %q %s", filepath.Join(bin, filepath.Base(m[2])), m[1])
	})
	script = goRun.ReplaceAllStringFunc(script, func(s string) string { return filepath.Base(goRun.FindStringSubmatch(s)[1]) })

	// The quick start's server, on a port of ours; every other port the README names gets
	// one of ours too (as a bare number: loops name them so).
	srv := startServer(t, filepath.Join(dir, "rescind-data"), nil)
	ports := map[string]string{}
	for _, m := range loopback.FindAllStringSubmatch(script, -1) {
		if _, ok := ports[m[1]]; !ok {
			ports[m[1]] = strings.TrimPrefix(freePort(t), "127.0.0.1:")
		}
	}
	ports["8080"] = strings.TrimPrefix(srv.url, "http://127.0.0.1:")
	for from, to := range ports {
		script = regexp.MustCompile(`\b`+from+`\b`).ReplaceAllString(script, to)
	}
	// The shared database of the multi-instance section.
	if databases.MatchString(script) {
		script = databases.ReplaceAllString(script, "RESCIND_DB='"+pgtest.NewDatabase(t)+"'")
	}

	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && (!strings.HasPrefix(kv, "RESCIND_") || strings.HasPrefix(kv, "RESCIND_TEST_")) {
			env = append(env, kv)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the README's background jobs with it
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything a failed block left running
	}
	outputs := strings.Split(stdout.String(), "@@block ")
	last := len(outputs) - 2 // the index of the last block that started
	if runErr != nil {
		b := run[max(last, 0)]
		t.Fatalf("README block at line %d (%s) failed: %v\n--- block ---\n%s--- stdout ---\n%s\n--- stderr ---\n%s",
			b.line, b.section, runErr, b.body, stdout.String(), stderr.String())
	}
	if last != len(run)-1 {
		t.Fatalf("%d of %d blocks ran\n%s", last+1, len(run), stdout.String())
	}
	t.Logf("the README ran in %v", time.Since(start).Round(time.Millisecond))

	// What each section says it prints.
	bySection := map[string]string{}
	for i, b := range run {
		_, out, _ := strings.Cut(outputs[i+1], "@@\n")
		bySection[b.section] += out
	}
	expect := map[string][]string{
		"Walkthrough: a client, a token, introspection, revocation": {`{"active":true,"scope":"read write"`, "\n200\n", `{"active":false}`},
		"Managing clients": {`"client_name": "billing"`, "deleted client ", `"kid": "`, `"signing_kid": "`, "rescind_tokens_issued_total"},
		"People and their grants: sign-in, consent, connected apps": {`"username": "alice"`, `"client_name": "Photo App"`,
			`"token_endpoint_auth_method": "none"`},
		"Revocation that reaches resource servers: JWT access tokens, status lists, push": {`"photos":["cat.jpg"]`, "\n401\n"},
		"Revoking and introspecting at any server: the client library and CLI":            {`"active": true`, `{"active":false}`},
		"Sender-constrained tokens: DPoP (RFC 9449)":                                      {`"token_type":"DPoP"`, `"cnf":{"jkt":"`, `{"active":false}`},
		"Agents and browser apps: resources, registration, metadata documents, CORS": {`["https://photos.example","https://calendar.example"]`,
			"invalid_target\ninvalid_target\n", `{"client_name":"ci-bot","grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}`,
			"ci-bot\n204\n"},
		"Backup and restore":        {"backed up the running server's database to " + filepath.Join(dir, "rescind-backup.db")},
		"Running several instances": {"applied 0001_init.sql", `{"active":true`, `{"active":false}`},
		"Shared Signals: telling other apps (SSF 1.0, CAEP, RISC)": {`"delivery_methods_supported":["urn:ietf:rfc:8935","urn:ietf:rfc:8936"]`,
			"\n200\n", `"events":{"https://schemas.openid.net/secevent/caep/event-type/session-revoked":`, `{"sets":{},"moreAvailable":false}`,
			`"deleted": true`},
	}
	for section, wants := range expect {
		out, ok := bySection[section]
		if !ok {
			t.Errorf("no block ran in section %q", section)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("section %q printed no %q:\n%s", section, w, out)
			}
		}
	}
	// The walkthrough prints exactly its three answers.
	if walk := strings.Split(strings.TrimSpace(bySection["Walkthrough: a client, a token, introspection, revocation"]), "\n"); len(walk) != 3 {
		t.Errorf("the walkthrough printed %d lines, want 3:\n%s", len(walk), strings.Join(walk, "\n"))
	}
	// Active before the revocation, inactive after, in that order, across instances.
	if out := bySection["Running several instances"]; strings.Index(out, `{"active":true`) > strings.Index(out, `{"active":false}`) {
		t.Errorf("instances: inactive before active:\n%s", out)
	}
	// The examples clean up after themselves.
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		if !slices.Contains([]string{".bin", "rescind-data", "rescind-backup.db", "resource-server"}, e.Name()) {
			left = append(left, e.Name())
		}
	}
	if len(left) > 0 {
		t.Errorf("the README left behind: %v", left)
	}
}

// TestParseReadme: blocks, languages, sections and both kinds of markers.
func TestParseReadme(t *testing.T) {
	text := "# T\n## One\n```sh\na\n```\n<!-- readme-test: not run (why) -->\n```sh\nb\n```\n```go\nc\n```\n" +
		"## Two\n<!-- readme-test: section not run (slow) -->\n```sh\nd\n```\n  ```\n  e\n  ```\n## Three\n```bash\nf\n```\n"
	got := parseReadme(text)
	want := []readmeBlock{
		{section: "One", lang: "sh", body: "a\n", line: 3},
		{section: "One", lang: "sh", body: "b\n", skip: "why", line: 7},
		{section: "One", lang: "go", body: "c\n", line: 10},
		{section: "Two", lang: "sh", body: "d\n", skip: "slow", line: 15},
		{section: "Two", lang: "", body: "  e\n", skip: "slow", line: 18},
		{section: "Three", lang: "bash", body: "f\n", line: 22},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("parseReadme:\n got %+v\nwant %+v", got, want)
	}
	var runnable []string
	for _, b := range got {
		if b.runnable() {
			runnable = append(runnable, b.body)
		}
	}
	if !slices.Equal(runnable, []string{"a\n", "f\n"}) {
		t.Fatalf("runnable: %q", runnable)
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o700); err != nil {
		t.Fatal(err)
	}
}
