package main

// End-to-end tests of the fixes to the re-audit of issue 12 (re1112: what a copied cookie may
// still do), adapted from the auditor's reproductions.

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// postFormFrom posts f to u with the client hc, each request shaped by mod (nil: as is), and
// returns the status (0 if the request failed).
func postFormFrom(hc *http.Client, u string, f url.Values, mod func(*http.Request)) int {
	req, _ := http.NewRequest("POST", u, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if mod != nil {
		mod(req)
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// sessionsCSRF returns the CSRF token of the sessions page as the signed-in client hc sees it.
func sessionsCSRF(t *testing.T, srv *server, hc *http.Client) string {
	t.Helper()
	res, err := hc.Get(srv.url + "/account/sessions")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return formOf(string(b)).Get("csrf_token")
}

// fromAddr makes a request come from addr (the server trusts 127.0.0.1 as a proxy).
func fromAddr(addr string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("X-Forwarded-For", addr) }
}

// TestEndOthersLoopKeepsSignIns (re-audit finding 1): someone holding only a copy of an older
// session's cookie loops "Sign out of other sessions" while the person signs in on new
// browsers: every sign-in works (the end covers only sessions signed in by the copy's, moves no
// epoch), the presses are refused a password once newer sessions exist, and the presses that
// ended nothing leave no audit entry.
func TestEndOthersLoopKeepsSignIns(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")
	none := func(*http.Request) {}
	thief := browserClient(nil) // stands for a copy of alice's cookie
	if c := loginFrom(t, srv, thief, "alice", "alice-password", none); c != http.StatusSeeOther {
		t.Fatalf("setup login %d", c)
	}
	csrf := sessionsCSRF(t, srv, thief)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	thiefCodes := map[int]int{}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := postFormFrom(thief, srv.url+"/account/sessions/end-others", url.Values{"csrf_token": {csrf}}, nil)
				mu.Lock()
				thiefCodes[c]++
				mu.Unlock()
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	// 25 sign-ins: within the per-person sign-in bucket (burst 30, with the thief's one), which
	// bounds successful sign-ins whatever happens meanwhile.
	owner := map[int]int{}
	for range 25 {
		owner[loginFrom(t, srv, browserClient(nil), "alice", "alice-password", none)]++
	}
	close(stop)
	wg.Wait()
	t.Logf("thief (copied cookie, no password) end-others: %v", thiefCodes)
	t.Logf("owner, right password, 25 sign-ins on new browsers during the loop: %v", owner)
	if owner[http.StatusSeeOther] != 25 {
		t.Errorf("the owner's sign-ins during the loop: %v; want 25 × 303", owner)
	}
	for c := range thiefCodes {
		if c != http.StatusSeeOther && c != http.StatusForbidden {
			t.Errorf("the thief's presses got %d (%v); want only 303 (nothing older to end) or 403 (password needed)", c, thiefCodes)
		}
	}
	if thiefCodes[http.StatusForbidden] == 0 {
		t.Errorf("the thief's presses were never asked for the password once newer sessions existed: %v", thiefCodes)
	}
	out := cli(t, nil, "audit", "list", "--data-dir", data, "--limit", "1000")
	if n := strings.Count(out, `"end_sessions"`); n != 0 {
		t.Errorf("%d end_sessions audit entries from presses that ended nothing; want 0", n)
	}
}

// TestCopiedDeviceCookieGuesses (re-audit finding 2): guesses made with a copy of alice's cookie
// jar, from a new network each, are checked no more often than the per-username bucket's burst
// (10): with the device cookie still valid (its own bucket, each failure charged to the
// username's too), and after "Sign out everywhere" forgot it. Alice's own other browser still
// signs in meanwhile, until her browsers are forgotten.
func TestCopiedDeviceCookieGuesses(t *testing.T) {
	for _, signOut := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed out everywhere %v", signOut), func(t *testing.T) {
			data := filepath.Join(shortTempDir(t), "d")
			srv := startServer(t, data, nil, "--trusted-proxies", "127.0.0.1")
			createUser(t, data, "alice", "alice-password")
			jar := browserClient(nil) // alice's browser, whose cookie jar the thief copied
			if c := loginFrom(t, srv, jar, "alice", "alice-password", fromAddr("198.51.100.7")); c != http.StatusSeeOther {
				t.Fatalf("setup %d", c)
			}
			laptop := browserClient(nil)
			if c := loginFrom(t, srv, laptop, "alice", "alice-password", fromAddr("198.51.100.8")); c != http.StatusSeeOther {
				t.Fatalf("setup %d", c)
			}
			if signOut {
				csrf := sessionsCSRF(t, srv, jar)
				if c := postFormFrom(jar, srv.url+"/account/sessions/end-all", url.Values{"csrf_token": {csrf}}, fromAddr("198.51.100.7")); c != http.StatusSeeOther {
					t.Fatalf("sign out everywhere: %d", c)
				}
			}
			codes := map[int]int{}
			for i := range 60 {
				codes[loginFrom(t, srv, jar, "alice", fmt.Sprintf("guess-%d", i), fromAddr(fmt.Sprintf("203.0.113.%d", i+1)))]++
			}
			t.Logf("60 guesses with the copied jar, 60 networks: %v", codes)
			if codes[http.StatusUnauthorized] > 10 || codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests] != 60 {
				t.Errorf("%v: more than the per-username burst (10) checked, or other answers", codes)
			}
			want := http.StatusSeeOther
			if signOut {
				want = http.StatusTooManyRequests // her browsers are forgotten, and the username's bucket is empty
			}
			if c := loginFrom(t, srv, laptop, "alice", "alice-password", fromAddr("198.51.100.8")); c != want {
				t.Errorf("alice's own other browser, right password: %d; want %d", c, want)
			}
		})
	}
}

// TestNewPasswordKeepsBrowsers (re-audit finding 3): while someone keeps the per-username
// bucket empty, a new password (rescind user set-password) does not lock the person out of the
// browser they always used; an operator's user logout forgets that browser too.
func TestNewPasswordKeepsBrowsers(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--trusted-proxies", "127.0.0.1")
	createUser(t, data, "alice", "alice-password")
	home := browserClient(nil)
	if c := loginFrom(t, srv, home, "alice", "alice-password", fromAddr("198.51.100.7")); c != http.StatusSeeOther {
		t.Fatalf("setup %d", c)
	}
	codes := map[int]int{}
	for i := range 12 { // one attacker address
		codes[loginFrom(t, srv, browserClient(nil), "alice", fmt.Sprintf("guess-%d", i), fromAddr("203.0.113.9"))]++
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Fatalf("attacker, one IPv4 address: %v; want the username's bucket emptied", codes)
	}
	cliInput(t, "new-alice-password\n", "user", "set-password", "--data-dir", data, "alice", "--password-stdin")
	if c := loginFrom(t, srv, home, "alice", "new-alice-password", fromAddr("198.51.100.7")); c != http.StatusSeeOther {
		t.Fatalf("the home browser after the new password: %d; want 303", c)
	}
	cli(t, nil, "user", "logout", "--data-dir", data, "alice")
	if c := loginFrom(t, srv, home, "alice", "new-alice-password", fromAddr("198.51.100.7")); c != http.StatusTooManyRequests {
		t.Fatalf("the home browser after user logout (browsers forgotten, bucket empty): %d; want 429", c)
	}
}
