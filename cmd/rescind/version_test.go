package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	cases := []struct {
		name string
		bi   *debug.BuildInfo
		want []string
		not  []string
	}{
		{"tagged build from a clean checkout", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.4.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-01T10:00:00Z"},
				{Key: "vcs.modified", Value: "false"}}},
			[]string{"rescind v1.4.0\n", "revision: 0123abcd\n", "commit time: 2026-11-01T10:00:00Z", "go: go1.26.0 "},
			[]string{"uncommitted", "unknown"}},
		{"modified checkout", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}},
			[]string{"rescind (devel)\n", "revision: 0123abcd (with uncommitted changes)"}, []string{"commit time"}},
		{"built with -buildvcs=false", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			[]string{"rescind (devel)\n", "revision: unknown (built without version control information"}, nil},
		{"no build information", nil, []string{"rescind (devel)\n", "revision: unknown", "go: go"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := versionText(tc.bi)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("has %q:\n%s", n, got)
				}
			}
		})
	}
}

// TestVersionCommand: the built binary answers `version` and `--version`.
func TestVersionCommand(t *testing.T) {
	out := cli(t, nil, "version")
	if !strings.HasPrefix(out, "rescind ") || !strings.Contains(out, "revision: ") || !strings.Contains(out, "go: go1.") {
		t.Fatalf("version printed:\n%s", out)
	}
	if out := cli(t, nil, "--version"); !strings.HasPrefix(out, "rescind version ") {
		t.Fatalf("--version printed: %s", out)
	}
}
