package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
)

// TestBenchCommand runs `rescind bench --embedded --ceiling` briefly and checks the report's
// shape: every scenario measured against both targets, with ratios. No figure is asserted.
func TestBenchCommand(t *testing.T) {
	cmd := exec.Command(binary, "bench", "--embedded", "--ceiling", "--duration", "400ms", "--warmup", "100ms",
		"--connections", "4", "--scenarios", "token,introspect,revoke,mixed", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // a pipe, not a terminal
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out, stderr.String())
	}
	if bytes.ContainsRune(stderr.Bytes(), '\r') {
		t.Fatalf("bench wrote terminal progress (\\r) to a pipe:\n%q", stderr.String())
	}
	var rs []benchResult
	if err := json.Unmarshal(out, &rs); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	if len(rs) != 8 {
		t.Fatalf("%d results; want 4 scenarios x (ceiling, rescind)", len(rs))
	}
	for _, r := range rs {
		if r.Requests == 0 || r.RPS <= 0 || r.P99ms <= 0 || r.P50ms > r.P99ms {
			t.Fatalf("result %+v", r)
		}
		if len(r.Errors) != 0 {
			t.Fatalf("errors in %s/%s: %v", r.Scenario, r.Target, r.Errors)
		}
		if r.Target == "rescind" && (r.RatioRPS <= 0 || r.CPUSeconds <= 0 || r.PeakRSSMiB <= 0 || r.DataDirMiB <= 0) {
			t.Fatalf("rescind result lacks ratios or server figures: %+v", r)
		}
	}
}

// TestBenchDPoP runs the DPoP scenarios briefly: every request of each gets its answer (a
// proof the server refused would show as an error), against the ceiling too.
func TestBenchDPoP(t *testing.T) {
	cmd := exec.Command(binary, "bench", "--embedded", "--ceiling", "--duration", "400ms", "--warmup", "100ms",
		"--connections", "4", "--scenarios", "token-dpop,resource-dpop", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out, stderr.String())
	}
	var rs []benchResult
	if err := json.Unmarshal(out, &rs); err != nil {
		t.Fatalf("bench --json printed %q: %v", out, err)
	}
	if len(rs) != 4 {
		t.Fatalf("%d results; want 2 scenarios x (ceiling, rescind)", len(rs))
	}
	for _, r := range rs {
		if r.Requests == 0 || r.RPS <= 0 || len(r.Errors) != 0 || r.Unavailable != "" {
			t.Fatalf("result %+v", r)
		}
		if r.Target == "rescind" && (r.RatioRPS <= 0 || r.CPUSeconds <= 0 || r.PeakRSSMiB <= 0) {
			t.Fatalf("rescind result lacks ratios or server figures: %+v", r)
		}
	}
}
