package main

// End-to-end tests of the fixes to the hostile audit of issue 12 (sessions), adapted from the
// auditor's reproductions.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loginFrom signs username in with password through the browser-like client hc (its own cookie
// jar, which keeps what the server sets), every request shaped by mod (an X-Forwarded-For
// header); it returns the status of the POST.
func loginFrom(t *testing.T, srv *server, hc *http.Client, username, password string, mod func(*http.Request)) int {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.url+"/login", nil)
	mod(req)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	f := formOf(string(b))
	f.Set("username", username)
	f.Set("password", password)
	req, _ = http.NewRequest("POST", srv.url+"/login", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	mod(req)
	if res, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// browserClient returns a client with a cookie jar of its own that does not follow redirects,
// dialling through tr (nil: the default transport).
func browserClient(tr http.RoundTripper) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestPasswordGuessesAcrossAddresses (audit of issue 12, finding 1): wrong passwords for one
// person are limited wherever they come from: from fresh addresses of one IPv6 /64 (behind a
// trusted proxy), and from four addresses of their own (loopback aliases). Then the right
// password from a new browser waits, while the browser the person signed in on before still
// signs in.
func TestPasswordGuessesAcrossAddresses(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--trusted-proxies", "127.0.0.1")
	createUser(t, data, "alice", "alice-password")
	createUser(t, data, "bob", "bob-password")
	from := func(xff string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("X-Forwarded-For", xff) }
	}
	home := browserClient(nil) // alice's own browser, from before the attack
	if code := loginFrom(t, srv, home, "alice", "alice-password", from("198.51.100.7")); code != http.StatusSeeOther {
		t.Fatalf("alice at home: %d", code)
	}

	// One /64, a new address each guess.
	codes := map[int]int{}
	for i := range 40 {
		codes[loginFrom(t, srv, browserClient(nil), "alice", fmt.Sprintf("guess-%d", i), from(fmt.Sprintf("2001:db8:1:2::%x", i+1)))]++
	}
	if codes[http.StatusUnauthorized] > 10 || codes[http.StatusTooManyRequests] < 30 {
		t.Errorf("40 wrong passwords for alice from one /64: %v; want at most 10 checked", codes)
	}
	if code := loginFrom(t, srv, browserClient(nil), "alice", "alice-password", from("203.0.113.9")); code != http.StatusTooManyRequests {
		t.Errorf("alice's right password from a new browser during the attack: %d; want 429", code)
	}
	if code := loginFrom(t, srv, home, "alice", "alice-password", from("198.51.100.7")); code != http.StatusSeeOther {
		t.Errorf("alice's right password from her own browser during the attack: %d; want 303", code)
	}

	// Four source addresses of their own (no proxy header), ten guesses each, for bob.
	codes = map[int]int{}
	for a := 2; a <= 5; a++ {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(a))}}
		tr := &http.Transport{DialContext: d.DialContext}
		defer tr.CloseIdleConnections()
		for i := range 10 {
			codes[loginFrom(t, srv, browserClient(tr), "bob", fmt.Sprintf("guess-%d-%d", a, i), func(*http.Request) {})]++
		}
	}
	if codes[http.StatusUnauthorized] > 10 {
		t.Errorf("40 wrong passwords for bob from 4 addresses: %v; want at most 10 checked", codes)
	}
}

// TestLongUsernameFlood (audit of issue 12, findings 1 and 2): while one /64 keeps sending wrong
// passwords from fresh addresses, the person signs in with the right password from elsewhere
// (not a 503: one network holds a share of the password checks at most), and a flood of logins
// with new 60 KiB usernames gets 400s and leaves the server's memory where it was.
func TestLongUsernameFlood(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, []string{"GOMAXPROCS=1"}, "--trusted-proxies", "127.0.0.1")
	createUser(t, data, "alice", "alice-password")
	rss := func() int64 {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(srv.cmd.Process.Pid) + "/status")
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10
			}
		}
		return 0
	}
	// A double-submit CSRF cookie and token for the sign-in form.
	p := newPerson(t)
	_, page := p.get(srv.url + "/login")
	csrf := formOf(page).Get("csrf_token")
	u, _ := url.Parse(srv.url)
	var cookie *http.Cookie
	for _, c := range p.hc.Jar.Cookies(u) {
		if c.Name == "rescind_csrf" {
			cookie = c
		}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(ctx context.Context, username, xff string) int {
		f := url.Values{"csrf_token": {csrf}, "username": {username}, "password": {"x"}}
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.url+"/login", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", xff)
		req.AddCookie(cookie)
		res, err := hc.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for w := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				post(ctx, fmt.Sprintf("user%d", w), fmt.Sprintf("2001:db8:aa::%x:%x", w+1, i+1))
				mu.Lock()
				n++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	// Each sign-in may meet a 503 when the machine is so loaded that its check waits past the
	// gate's 2 s (the flood holds a share of the places at most, not the queue's speed): a
	// person retries it; three retries that all fail mean the flood kept alice out.
	legit := map[int]int{}
	for range 3 {
		code := 0
		for try := 0; try < 4; try++ {
			if code = loginFrom(t, srv, browserClient(nil), "alice", "alice-password", func(r *http.Request) { r.Header.Set("X-Forwarded-For", "198.51.100.7") }); code != http.StatusServiceUnavailable {
				break
			}
		}
		legit[code]++
	}
	cancel()
	wg.Wait()
	if legit[http.StatusSeeOther] != 3 {
		t.Errorf("alice's right password while one /64 sent %d wrong ones: %v; want 3 sign-ins", n, legit)
	}

	before := rss()
	big := strings.Repeat("u", 60<<10)
	codes := map[int]int{}
	for i := range 300 {
		codes[post(context.Background(), fmt.Sprintf("%d-%s", i, big), fmt.Sprintf("2001:db8:bb::%x", i+1))]++
	}
	after := rss()
	if codes[http.StatusBadRequest] != 300 || after-before > 30<<20 {
		t.Errorf("300 logins with new 60 KiB usernames: %v; server RSS %d MiB -> %d MiB", codes, before>>20, after>>20)
	}
}

// TestSignInRecords (audit of issue 12, finding 4): one browser signing in again and again (each
// sign-in ends its last session, whose record every instance keeps) is limited: 30 sign-ins,
// then 429, so one person cannot pile up records.
func TestSignInRecords(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	metricsAddr := freePort(t)
	srv := startServer(t, data, nil, "--metrics-addr", metricsAddr)
	createUser(t, data, "mallory", "mallory-password")
	records := func() int {
		res, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "rescind_revocation_state_records "); ok {
				n, _ := strconv.ParseFloat(v, 64)
				return int(n)
			}
		}
		t.Fatal("no rescind_revocation_state_records metric")
		return 0
	}
	before := records()
	p := newPerson(t)
	codes := map[int]int{}
	for range 40 {
		_, page := p.get(srv.url + "/login")
		f := formOf(page)
		f.Set("username", "mallory")
		f.Set("password", "mallory-password")
		res, _ := p.post(srv.url+"/login", f)
		codes[res.StatusCode]++
	}
	if codes[http.StatusSeeOther] != 30 || codes[http.StatusTooManyRequests] != 10 {
		t.Errorf("40 sign-ins of one person at once: %v; want 30 then 429", codes)
	}
	if got := records() - before; got > 30 {
		t.Errorf("%d records of ended sessions from one person's sign-ins; want at most 30", got)
	}
}
