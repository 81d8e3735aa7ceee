// Package unixsock listens on and dials Unix sockets whose paths may exceed the 108-byte limit
// of sun_path: a long path is reached through /proc/self/fd/N/NAME, where N is an open
// descriptor of the socket's directory (Linux).
package unixsock

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// maxPath is the longest path passed to bind or connect as is (sun_path holds 108 bytes with
// the terminating NUL; leave room).
const maxPath = 100

// shortPath returns a path no longer than maxPath naming the same socket, and a function to
// call once the bind or connect is done.
func shortPath(path string) (string, func(), error) {
	if len(path) <= maxPath {
		return path, func() {}, nil
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return "", nil, fmt.Errorf("unixsock: opening socket directory: %w", err)
	}
	p := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	if len(p) > maxPath {
		dir.Close()
		return "", nil, fmt.Errorf("unixsock: socket name %q is too long", filepath.Base(path))
	}
	return p, func() { dir.Close() }, nil
}

// Listen listens on the Unix socket at path, replacing a stale socket file, with the socket
// readable and writable by the owner only.
func Listen(path string) (net.Listener, error) {
	short, done, err := shortPath(path)
	if err != nil {
		return nil, err
	}
	defer done()
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	old := syscall.Umask(0o077)
	ln, err := net.Listen("unix", short)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("unixsock: listening on %s: %w", path, err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false) // the short name is not valid after this call; Close removes nothing
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("unixsock: socket permissions: %w", err)
	}
	return ln, nil
}

// Dial connects to the Unix socket at path.
func Dial(ctx context.Context, path string) (net.Conn, error) {
	short, done, err := shortPath(path)
	if err != nil {
		return nil, err
	}
	defer done()
	var d net.Dialer
	return d.DialContext(ctx, "unix", short)
}
