package unixsock

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLongPath(t *testing.T) {
	for _, n := range []int{1, 150} {
		dir := filepath.Join(t.TempDir(), strings.Repeat("d", n))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "admin.sock")
		ln, err := Listen(path)
		if err != nil {
			t.Fatalf("Listen(%d-byte path): %v", len(path), err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Write([]byte("ok"))
				c.Close()
			}
		}()
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("socket file: %v %v", fi, err)
		}
		c, err := Dial(context.Background(), path)
		if err != nil {
			t.Fatalf("Dial(%d-byte path): %v", len(path), err)
		}
		b, _ := io.ReadAll(c)
		c.Close()
		ln.Close()
		if string(b) != "ok" {
			t.Fatalf("read %q", b)
		}
	}
}
