package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rescind/rescind/admin"
)

// TestConcurrentWrongCredentials: 60 concurrent wrong passwords from one address, then 60
// concurrent wrong client secrets, at the real binary with production argon2id parameters (19 MiB
// a check). The rate limit takes its token before any hash is computed, so at most the burst (10)
// are checked and get 401; the rest get 429 with Retry-After. Every check goes through one bound
// on concurrent argon2 work, so the server's peak memory stays small.
func TestConcurrentWrongCredentials(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "svc")), &c)

	const n, burst = 60, 10
	count := func(what string, send func() *http.Response) {
		t.Helper()
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res := send()
				if res == nil {
					return
				}
				res.Body.Close()
				mu.Lock()
				codes[res.StatusCode]++
				mu.Unlock()
				if res.StatusCode == http.StatusTooManyRequests {
					if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 {
						t.Errorf("%s: 429 with Retry-After %q", what, res.Header.Get("Retry-After"))
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		t.Logf("%s: %v", what, codes)
		if codes[401] > burst || codes[401]+codes[429] != n {
			t.Fatalf("%s: %v; want at most %d checked (401), the rest 429", what, codes, burst)
		}
	}

	p := newPerson(t)
	_, page := p.get(srv.url + "/login")
	form := formOf(page)
	form.Set("username", "alice")
	form.Set("password", "wrong")
	count("wrong passwords", func() *http.Response {
		req, _ := http.NewRequest("POST", srv.url+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := p.hc.Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		return res
	})
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()
	count("wrong client secrets", func() *http.Response {
		req, _ := http.NewRequest("POST", srv.url+"/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ClientID, "wrong-secret")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		return res
	})
	if hwm := peakRSS(t, srv.cmd.Process.Pid); hwm > 300<<20 {
		t.Fatalf("the server's peak RSS is %d MiB, want under 300", hwm>>20)
	} else {
		t.Logf("server peak RSS: %d MiB", hwm>>20)
	}
}

// peakRSS reads a process's peak resident set (VmHWM) from /proc, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("reading the server's memory: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
