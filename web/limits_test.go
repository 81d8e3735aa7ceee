package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/secret"
)

// directLogin posts a login for user/pass straight to the handler, as if from remote (a
// request's RemoteAddr, the client's address behind trusted proxies) with cookies; it returns
// the status and the cookies set.
func directLogin(t *testing.T, e *pagesEnv, remote string, cookies []*http.Cookie, user, pass string) (int, []*http.Cookie) {
	t.Helper()
	w := httptest.NewRecorder()
	e.s.HandleLoginPage(w, httptest.NewRequest(http.MethodGet, "/login", nil))
	csrf := w.Result().Cookies()[0]
	form := url.Values{"csrf_token": {csrf.Value}, "username": {user}, "password": {pass}}
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = remote
	r.AddCookie(csrf)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w = httptest.NewRecorder()
	e.s.HandleLogin(w, r)
	return w.Code, w.Result().Cookies()
}

func deviceOf(cookies []*http.Cookie) []*http.Cookie {
	for _, c := range cookies {
		if c.Name == deviceCookie {
			return []*http.Cookie{c}
		}
	}
	return nil
}

// TestLoginPerUsername (audit of issue 12, finding 1): wrong passwords for one username are
// limited wherever they come from (a new network for each guess); while that bucket is empty,
// the right password from a browser the person never signed in on is refused unchecked, but a
// browser they signed in on before (its device cookie, for that username only) still signs in,
// and another person is not affected.
func TestLoginPerUsername(t *testing.T) {
	var e *pagesEnv
	e = newPagesEnv(t, func(c *Config) {
		now := func() time.Time { return e.clock() }
		c.Limiter = ratelimit.New(ratelimit.Config{Burst: 10, PerMinute: 10, Now: now})
		c.UserLimiter = ratelimit.New(ratelimit.Config{Burst: 3, PerHour: 6, Now: now})
	})
	status, set := directLogin(t, e, "192.0.2.1:4000", nil, "alice", password)
	home := deviceOf(set)
	if status != http.StatusSeeOther || home == nil || !home[0].HttpOnly || home[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("alice at home: %d, device cookie %v", status, home)
	}
	_, set = directLogin(t, e, "192.0.2.9:4000", nil, "bob", password)
	bobs := deviceOf(set)
	for i, want := range []int{401, 401, 401, 429, 429} { // each guess from a network of its own
		remote := []string{"198.51.100.1", "198.51.100.2", "203.0.113.3", "[2001:db8:1::1]", "[2001:db8:2::1]"}[i] + ":5000"
		if got, _ := directLogin(t, e, remote, nil, "alice", "guess"); got != want {
			t.Fatalf("guess %d from %s: %d; want %d", i, remote, got, want)
		}
	}
	for _, tc := range []struct {
		name    string
		user    string
		cookies []*http.Cookie
		want    int
	}{
		{"alice, a new browser", "alice", nil, http.StatusTooManyRequests},
		{"alice, bob's device cookie", "alice", bobs, http.StatusTooManyRequests},
		{"alice, a forged device cookie", "alice", []*http.Cookie{{Name: deviceCookie, Value: "x." + strings.Repeat("A", 43)}}, http.StatusTooManyRequests},
		{"alice, her own browser", "alice", home, http.StatusSeeOther},
		{"bob, a new browser", "bob", nil, http.StatusSeeOther},
	} {
		if got, _ := directLogin(t, e, "198.51.100.77:5000", tc.cookies, tc.user, password); got != tc.want {
			t.Errorf("%s: %d; want %d", tc.name, got, tc.want)
		}
	}
	// A new password keeps the person's browsers remembered (re-audit, finding 3): while the
	// username's bucket is empty, her own browser signs in with the new password.
	h, _ := secret.Hash("a new password", secret.Params{Memory: 64, Time: 1, Threads: 1})
	if _, _, err := e.st.SetPassword(context.Background(), "alice-id", h, false, rescind.Revocation{RevokedAt: e.clock()}, rescind.SessionEnd{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := directLogin(t, e, "198.51.100.77:5000", home, "alice", "a new password"); got != http.StatusSeeOther {
		t.Fatalf("alice's own browser after a new password: %d; want 303", got)
	}
	// Forgetting her browsers (signing out everywhere, user logout) makes every device cookie
	// of hers worthless: the same cookie now meets the empty username bucket.
	if _, err := e.st.EndSessions(context.Background(), rescind.SessionFilter{UserID: "alice-id", ForgetDevices: true}, rescind.Revocation{RevokedAt: e.clock()}, rescind.SessionEnd{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := directLogin(t, e, "198.51.100.77:5000", home, "alice", "a new password"); got != http.StatusTooManyRequests {
		t.Fatalf("alice's device cookie after her browsers were forgotten: %d; want 429", got)
	}
	e.advance(10 * time.Minute) // six an hour: one back
	if got, _ := directLogin(t, e, "198.51.100.77:5000", nil, "alice", "a new password"); got != http.StatusSeeOther {
		t.Fatalf("alice after ten minutes: %d", got)
	}
}

// TestLoginDeviceBucket (re-audit of issue 12, finding 2): a device cookie is charged to a
// bucket of its own, not let through: a copy of it guessing from a new network each time gets
// that bucket's burst of checked guesses, each charged to the username's bucket too, then
// nothing more, with or without the cookie. The person's other browser is unaffected.
func TestLoginDeviceBucket(t *testing.T) {
	var e *pagesEnv
	e = newPagesEnv(t, func(c *Config) {
		now := func() time.Time { return e.clock() }
		c.Limiter = ratelimit.New(ratelimit.Config{Burst: 10, PerMinute: 10, Now: now})
		c.UserLimiter = ratelimit.New(ratelimit.Config{Burst: 3, PerHour: 6, Now: now})
	})
	_, set := directLogin(t, e, "192.0.2.1:4000", nil, "alice", password)
	copied := deviceOf(set)
	_, set = directLogin(t, e, "192.0.2.2:4000", nil, "alice", password)
	laptop := deviceOf(set)
	if copied == nil || laptop == nil {
		t.Fatal("no device cookies")
	}
	checked := 0
	for i := range 8 {
		got, _ := directLogin(t, e, "198.51.100."+strconv.Itoa(i+1)+":5000", copied, "alice", "guess")
		if got == http.StatusUnauthorized {
			checked++
		} else if got != http.StatusTooManyRequests {
			t.Fatalf("guess %d: %d", i, got)
		}
	}
	if checked != 3 {
		t.Fatalf("%d guesses checked with a copied device cookie; want 3 (its own bucket's burst)", checked)
	}
	if got, _ := directLogin(t, e, "198.51.100.99:5000", nil, "alice", "guess"); got != http.StatusTooManyRequests {
		t.Fatalf("a guess without the cookie after those: %d; want 429 (they were charged to the username)", got)
	}
	if got, _ := directLogin(t, e, "192.0.2.2:4000", laptop, "alice", password); got != http.StatusSeeOther {
		t.Fatalf("alice's other browser: %d; want 303", got)
	}
}

// TestLoginIPv6Network (audit of issue 12, finding 1): the addresses of one IPv6 /64 share the
// address bucket; another /64 has its own.
func TestLoginIPv6Network(t *testing.T) {
	var e *pagesEnv
	e = newPagesEnv(t, func(c *Config) {
		c.Limiter = ratelimit.New(ratelimit.Config{Burst: 2, PerMinute: 1, Now: func() time.Time { return e.clock() }})
	})
	for i, want := range []int{401, 401, 429} { // a new address and a new username each time
		remote := []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::2]:1", "[2001:db8:1:2:ffff::9]:1"}[i]
		if got, _ := directLogin(t, e, remote, nil, "user"+string(rune('a'+i)), "guess"); got != want {
			t.Fatalf("guess %d from %s: %d; want %d", i, remote, got, want)
		}
	}
	if got, _ := directLogin(t, e, "[2001:db8:1:3::1]:1", nil, "alice", password); got != http.StatusSeeOther {
		t.Fatalf("alice from the next /64: %d", got)
	}
}

// TestLoginLongUsername (audit of issue 12, finding 2): a username over 256 bytes is refused
// with a 400 before any bucket is made or anything looked up; one of 256 bytes is checked.
func TestLoginLongUsername(t *testing.T) {
	l := ratelimit.New(ratelimit.Config{})
	ul := ratelimit.New(ratelimit.Config{})
	e := newPagesEnv(t, func(c *Config) { c.Limiter, c.UserLimiter = l, ul })
	if got, _ := directLogin(t, e, "192.0.2.1:1", nil, strings.Repeat("u", 257), password); got != http.StatusBadRequest || l.Len()+ul.Len() != 0 {
		t.Fatalf("257 bytes: %d, %d buckets", got, l.Len()+ul.Len())
	}
	if got, _ := directLogin(t, e, "192.0.2.1:1", nil, strings.Repeat("u", 256), password); got != http.StatusUnauthorized || l.Len() == 0 {
		t.Fatalf("256 bytes: %d, %d buckets", got, l.Len())
	}
}

// blockingUsers waits for its context to end, as a password check waiting its turn at a full
// gate does when the browser goes away.
type blockingUsers struct{}

func (blockingUsers) Authenticate(ctx context.Context, _, _ string) (rescind.User, error) {
	<-ctx.Done()
	return rescind.User{}, ctx.Err()
}

// TestLoginAbandoned (audit of issue 12, minor point): a browser that goes away while its
// password check waits is no error of the server's: logged at debug level, not as an error.
func TestLoginAbandoned(t *testing.T) {
	e := newPagesEnv(t, func(c *Config) { c.Users = blockingUsers{} })
	w := httptest.NewRecorder()
	e.s.HandleLoginPage(w, httptest.NewRequest(http.MethodGet, "/login", nil))
	csrf := w.Result().Cookies()[0]
	form := url.Values{"csrf_token": {csrf.Value}, "username": {"alice"}, "password": {password}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(csrf)
	e.s.HandleLogin(httptest.NewRecorder(), r)
	if logs := e.logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Fatalf("an abandoned login is logged as an error:\n%s", logs)
	}
}
