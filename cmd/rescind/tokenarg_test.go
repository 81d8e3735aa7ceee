package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLITokenArguments: revoke and introspect trim the token, read it from --token-file (or
// stdin), and warn when the argument names a file (which is then sent as the token itself).
func TestCLITokenArguments(t *testing.T) {
	dir := shortTempDir(t)
	data := filepath.Join(dir, "d")
	srv := startServer(t, data, nil)
	info := newClientFor(t, data)
	env := []string{"RESCIND_ISSUER=" + srv.url, "RESCIND_CLIENT_ID=" + info.ClientID, "RESCIND_CLIENT_SECRET=" + info.ClientSecret}
	active := func(tok string) bool { return srv.active(info.ClientID, info.ClientSecret, tok) }
	run := func(stdin string, args ...string) (string, string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}

	t.Run("stray whitespace is trimmed", func(t *testing.T) {
		tok := srv.token(info.ClientID, info.ClientSecret)
		if _, errOut, err := run("", "revoke", " "+tok+" \n"); err != nil {
			t.Fatalf("revoke: %v %s", err, errOut)
		}
		if active(tok) {
			t.Fatal("the token is active after revoking it with surrounding spaces")
		}
	})
	t.Run("a path argument is sent as the token, with a warning", func(t *testing.T) {
		tok := srv.token(info.ClientID, info.ClientSecret)
		os.WriteFile(filepath.Join(dir, "token.txt"), []byte(tok+"\n"), 0o600)
		_, errOut, err := run("", "revoke", "./token.txt")
		if err != nil || !strings.Contains(errOut, `warning: the argument "./token.txt" names an existing file, but it is sent as the token itself`) ||
			!strings.Contains(errOut, "--token-file") {
			t.Fatalf("revoke ./token.txt: %v\n%s", err, errOut)
		}
		if !active(tok) {
			t.Fatal("the file's token was revoked although its path was sent")
		}
		out, errOut, err := run("", "introspect", "--token-file", "token.txt", "--output", "json")
		if err != nil || !strings.Contains(out, `"active":true`) || strings.Contains(errOut, "warning") {
			t.Fatalf("introspect --token-file: %v\n%s\n%s", err, out, errOut)
		}
		if _, errOut, err := run("", "revoke", "--token-file", "token.txt"); err != nil || strings.Contains(errOut, "warning") {
			t.Fatalf("revoke --token-file: %v %s", err, errOut)
		}
		if active(tok) {
			t.Fatal("the token is active after revoke --token-file")
		}
	})
	t.Run("token file from stdin", func(t *testing.T) {
		tok := srv.token(info.ClientID, info.ClientSecret)
		if _, errOut, err := run("\n  "+tok+"\r\n", "revoke", "--token-file", "-"); err != nil {
			t.Fatalf("revoke --token-file -: %v %s", err, errOut)
		}
		if active(tok) {
			t.Fatal("the token is active after revoke --token-file -")
		}
	})
	for _, tc := range []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"both an argument and a file", "", []string{"revoke", "--token-file", "token.txt", "rsc_at_x"}, "either as an argument or with --token-file, not both"},
		{"neither", "", []string{"revoke"}, `a token is required: as the argument, "-" to read it from stdin, or --token-file FILE`},
		{"two tokens", "", []string{"introspect", "rsc_at_a rsc_at_b"}, "contains whitespace"},
		{"empty stdin", " \n", []string{"revoke", "-"}, "the token from stdin is empty"},
		{"missing file", "", []string{"revoke", "--token-file", "nope.txt"}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, err := run(tc.stdin, tc.args...)
			if err == nil || !strings.Contains(errOut, tc.want) {
				t.Fatalf("%v\n%s\nwant an error containing %q", err, errOut, tc.want)
			}
		})
	}
}
