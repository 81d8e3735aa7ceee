package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
)

// TestCrashSafetySQLite streams revocations at a real server, SIGKILLs it mid-stream, restarts it
// on the same data, and checks that every revocation that got a 200 is still revoked and every
// token whose revocation was never sent still works. A kill that lands after the last
// acknowledgement proves nothing, so the run is repeated (on a fresh server) until the kill lands
// with revocations still in flight; the test fails if it never does. (The PostgreSQL variant is in
// TestCluster.)
func TestCrashSafetySQLite(t *testing.T) {
	for attempt := 1; ; attempt++ {
		count, sent := crashOnce(t)
		if count < sent {
			t.Logf("attempt %d: the kill landed mid-stream (%d of %d revocations acknowledged)", attempt, count, sent)
			return
		}
		if attempt == 5 {
			t.Fatalf("in %d attempts the kill never landed while revocations were in flight", attempt)
		}
		t.Logf("attempt %d: every revocation was acknowledged before the kill; again", attempt)
	}
}

// crashOnce runs one crash test and returns how many revocations were acknowledged before the
// kill, of how many sent.
func crashOnce(t *testing.T) (count, sent int) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "crash")), &c)
	const n = 600
	toks := make([]string, n)
	for i := range toks {
		toks[i] = srv.token(c.ClientID, c.ClientSecret)
	}
	sent = n / 2 // the second half is never sent: it must stay active
	acked := revokeThenKill(t, srv, c.ClientID, c.ClientSecret, toks[:sent])
	acked = append(acked, make([]bool, n-sent)...)
	for _, a := range acked {
		if a {
			count++
		}
	}
	srv = startServer(t, data, nil)
	defer srv.stop()
	for i, a := range acked {
		if a && srv.active(c.ClientID, c.ClientSecret, toks[i]) {
			t.Fatalf("revocation %d was acknowledged before the crash but the token is active after restart", i)
		}
	}
	for i := sent; i < n; i++ {
		if !srv.active(c.ClientID, c.ClientSecret, toks[i]) {
			t.Fatalf("token %d was never revoked but is inactive after restart", i)
		}
	}
	t.Logf("crash test: %d revocations acknowledged before SIGKILL were all found revoked after restart; %d never-revoked tokens still active",
		count, n-sent)
	return count, sent
}

// revokeThenKill sends revocations of toks through victim from 8 connections and SIGKILLs it
// once a quarter of them are acknowledged, while the rest are in flight; it returns which
// revocations got a 200.
func revokeThenKill(t *testing.T, victim *server, clientID, secret string, toks []string) []bool {
	t.Helper()
	acked := make([]bool, len(toks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	enough := make(chan struct{})
	var once sync.Once
	n := 0
	hc := &http.Client{Timeout: 10 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(toks); i += 8 {
				req, _ := http.NewRequest("POST", victim.url+"/oauth2/revoke", strings.NewReader(url.Values{"token": {toks[i]}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(clientID, secret)
				res, err := hc.Do(req)
				if err != nil {
					return // the victim is gone
				}
				res.Body.Close()
				if res.StatusCode == 200 {
					mu.Lock()
					acked[i] = true
					n++
					if n >= len(toks)/4 {
						once.Do(func() { close(enough) })
					}
					mu.Unlock()
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("too few revocations were acknowledged")
	}
	victim.kill()
	wg.Wait()
	return acked
}
