package pgtest

import (
	"bytes"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Proxy forwards connections to a test database on loopback, counting round trips: how many
// times a client sent something after the server had answered (or first), pings aside. It can
// also hold the server's answers back, to let a test line requests up behind one in flight.
type Proxy struct {
	ln     net.Listener
	target string // network address of the server: "unix:/path" or "tcp:host:port"

	mu             sync.Mutex
	roundTrips     int
	clientSpeaking map[net.Conn]bool
	held           chan struct{} // closed when answers may flow; nil when not holding
}

// NewProxy starts a proxy to the database at dsn (a postgres:// URL, as NewDatabase returns)
// and returns it with the DSN that reaches the database through it. It stops when tb ends.
func NewProxy(tb testing.TB, dsn string) (*Proxy, string) {
	tb.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	target := "tcp:" + net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if filepath.IsAbs(cfg.Host) {
		target = "unix:" + filepath.Join(cfg.Host, ".s.PGSQL."+strconv.Itoa(int(cfg.Port)))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	p := &Proxy{ln: ln, target: target, clientSpeaking: map[net.Conn]bool{}}
	go p.serve()
	tb.Cleanup(p.close)
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	q := u.Query()
	q.Del("host")
	q.Del("port")
	u.RawQuery = q.Encode()
	u.Host = ln.Addr().String()
	return p, u.String()
}

// RoundTrips returns the round trips counted since the last Reset.
func (p *Proxy) RoundTrips() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.roundTrips
}

// Reset sets the count to zero.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.roundTrips = 0
	p.mu.Unlock()
}

// Hold keeps the server's answers from reaching the clients until Release.
func (p *Proxy) Hold() {
	p.mu.Lock()
	if p.held == nil {
		p.held = make(chan struct{})
	}
	p.mu.Unlock()
}

// Release lets the held answers through.
func (p *Proxy) Release() {
	p.mu.Lock()
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
	p.mu.Unlock()
}

func (p *Proxy) close() {
	p.Release()
	p.ln.Close()
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		network, addr, _ := strings.Cut(p.target, ":")
		s, err := net.Dial(network, addr)
		if err != nil {
			c.Close()
			continue
		}
		go p.pipe(c, s, true)
		go p.pipe(s, c, false)
	}
}

// pipe copies from src to dst; fromClient says which way.
func (p *Proxy) pipe(src, dst net.Conn, fromClient bool) {
	defer src.Close()
	defer dst.Close()
	client := src
	if !fromClient {
		client = dst
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if fromClient {
				// pgxpool pings a connection idle for a second ("-- ping"): not a round trip of
				// the code under test.
				if !p.clientSpeaking[client] && !bytes.Contains(buf[:n], []byte("-- ping")) {
					p.roundTrips++
				}
				p.clientSpeaking[client] = true
			} else {
				p.clientSpeaking[client] = false
			}
			held := p.held
			p.mu.Unlock()
			if !fromClient && held != nil {
				<-held
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
