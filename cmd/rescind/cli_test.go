package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestMistypedCommands: a mistyped subcommand gets "unknown command" with a suggestion, at the
// root and in every command group, whatever flags follow it.
func TestMistypedCommands(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"client", "crate", "--name", "x"}, "unknown command \"crate\" for \"rescind client\"\n\nDid you mean this?\n\tcreate\n"},
		{[]string{"client", "lst"}, "Did you mean this?\n\tlist\n"},
		{[]string{"keys", "rotat"}, "Did you mean this?\n\trotate\n"},
		{[]string{"user", "delet", "alice"}, "Did you mean this?\n\tdelete\n"},
		{[]string{"audit", "lis", "--limit", "3"}, "Did you mean this?\n\tlist\n"},
		{[]string{"clinet", "list"}, "unknown command \"clinet\" for \"rescind\"\n\nDid you mean this?\n\tclient\n"},
		{[]string{"client", "frobnicate"}, "unknown command \"frobnicate\" for \"rescind client\"\n\nRun 'rescind client --help'"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			root := newRootCommand(strings.NewReader(""), &out, &out)
			root.SetArgs(tc.args)
			err := root.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want it to contain %q", err, tc.want)
			}
		})
	}
	// A group alone prints its help.
	var out bytes.Buffer
	root := newRootCommand(strings.NewReader(""), &out, &out)
	root.SetArgs([]string{"client"})
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), "Available Commands:") {
		t.Fatalf("rescind client: %v\n%s", err, out.String())
	}
}

// TestKeysRotateHelp: the help says both keys rotate.
func TestKeysRotateHelp(t *testing.T) {
	var out bytes.Buffer
	root := newRootCommand(strings.NewReader(""), &out, &out)
	root.SetArgs([]string{"keys", "rotate", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "sealing key") || !strings.Contains(out.String(), "signing key") {
		t.Fatalf("keys rotate --help:\n%s", out.String())
	}
}
