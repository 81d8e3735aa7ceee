package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rescind/rescind/internal/testenv"
)

// TestReadmeWalkthrough runs the README's walkthrough block as a user would paste it, against a
// real server started with the README's first command (the built binary stands in for
// `go run ./cmd/rescind`, and a free port for 8080, so the test never collides with a real server).
func TestReadmeWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		testenv.Unavailable(t, "curl", "curl is not installed")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- walkthrough")
	if !ok {
		t.Fatal("README has no walkthrough marker")
	}
	_, block, _ := strings.Cut(after, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	if !strings.Contains(block, "go run ./cmd/rescind") || !strings.Contains(block, "127.0.0.1:8080") {
		t.Fatalf("walkthrough block changed shape:\n%s", block)
	}

	dir := shortTempDir(t)
	srv := startServer(t, filepath.Join(dir, "rescind-data"), nil) // ./rescind-data, as the default
	script := strings.ReplaceAll(block, "go run ./cmd/rescind", binary)
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", srv.url)

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], `{"active":true,"scope":"read write"`) ||
		lines[1] != "200" || lines[2] != `{"active":false}` {
		t.Fatalf("walkthrough printed:\n%s", out)
	}
}
