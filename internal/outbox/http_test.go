package outbox

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/safehttp"
)

// receiver is a test endpoint on loopback that answers with handle and counts requests.
func receiver(t *testing.T, handle http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		handle(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func loopbackPoster() *HTTPDeliverer {
	return NewHTTPDeliverer(HTTPConfig{AllowLoopback: true, Timeout: 2 * time.Second, Now: func() time.Time { return now }})
}

// TestHTTPStatuses: 2xx is delivered; 408, 429 and 5xx are retried, honouring Retry-After;
// other statuses, redirects included (never followed), are permanent.
func TestHTTPStatuses(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter string
		want       string // delivered, retry, permanent
		after      time.Duration
	}{
		{200, "", "delivered", 0},
		{202, "", "delivered", 0},
		{204, "", "delivered", 0},
		{500, "", "retry", 0},
		{502, "", "retry", 0},
		{503, "120", "retry", 2 * time.Minute},
		{429, now.Add(90 * time.Second).Format(http.TimeFormat), "retry", 90 * time.Second},
		{429, "soon", "retry", 0}, // malformed: the backoff applies
		{408, "", "retry", 0},
		{400, "", "permanent", 0},
		{401, "", "permanent", 0},
		{404, "", "permanent", 0},
		{410, "", "permanent", 0},
		{301, "", "permanent", 0},
		{302, "", "permanent", 0},
		{307, "", "permanent", 0},
	} {
		t.Run(http.StatusText(tc.status)+" "+tc.retryAfter, func(t *testing.T) {
			var followed atomic.Int64
			srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					followed.Add(1)
					return
				}
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				if tc.status >= 300 && tc.status < 400 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
			})
			err := loopbackPoster().Post(context.Background(), HTTPRequest{URL: srv.URL + "/hook", ContentType: "text/plain", Body: []byte("x")})
			got := "retry"
			switch {
			case err == nil:
				got = "delivered"
			case IsPermanent(err):
				got = "permanent"
			}
			if got != tc.want {
				t.Fatalf("status %d: %v (%s); want %s", tc.status, err, got, tc.want)
			}
			if ra := retryAfter(err); ra != tc.after {
				t.Fatalf("status %d with Retry-After %q: wait %v; want %v", tc.status, tc.retryAfter, ra, tc.after)
			}
			if err != nil && !strings.Contains(err.Error(), http.StatusText(tc.status)) {
				t.Fatalf("error %q does not name the status", err)
			}
			if followed.Load() != 0 {
				t.Fatal("a redirect was followed")
			}
		})
	}
}

// TestHTTPRequest: the POST carries the body, the content type and the header fields that
// Prepare produced at delivery time, for each attempt anew.
func TestHTTPRequest(t *testing.T) {
	type seen struct{ method, ctype, auth, body string }
	got := make(chan seen, 2)
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), string(b)}
		w.WriteHeader(http.StatusAccepted)
	})
	var prepared atomic.Int64
	h := NewHTTPDeliverer(HTTPConfig{AllowLoopback: true, Prepare: func(_ context.Context, m rescind.OutboxMessage) (HTTPRequest, error) {
		n := prepared.Add(1)
		return HTTPRequest{URL: srv.URL + "/events", ContentType: "application/secevent+jwt", Body: m.Payload,
			Header: http.Header{"Authorization": {"Bearer credential-" + string(rune('0'+n))}}}, nil
	}})
	m := rescind.OutboxMessage{ID: 1, Kind: "ssf", Payload: []byte("eyJ.set.sig")}
	for i := range 2 {
		if err := h.Deliver(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		s := <-got
		want := seen{"POST", "application/secevent+jwt", "Bearer credential-" + string(rune('1'+i)), "eyJ.set.sig"}
		if s != want {
			t.Fatalf("attempt %d: the receiver saw %+v; want %+v", i, s, want)
		}
	}
	// Prepare's error is the attempt's, as it says.
	h = NewHTTPDeliverer(HTTPConfig{AllowLoopback: true, Prepare: func(context.Context, rescind.OutboxMessage) (HTTPRequest, error) {
		return HTTPRequest{}, Permanent(errors.New("the client is gone"))
	}})
	if err := h.Deliver(context.Background(), m); !IsPermanent(err) || err.Error() != "the client is gone" {
		t.Fatalf("Deliver with a failing Prepare: %v; want Prepare's permanent error", err)
	}
	if err := NewHTTPDeliverer(HTTPConfig{}).Deliver(context.Background(), m); !IsPermanent(err) {
		t.Fatalf("Deliver without Prepare: %v; want a permanent error", err)
	}
}

// TestHTTPRefusesAddresses: without AllowLoopback, loopback is refused when dialling (a name
// that resolves to it too), permanently, and the receiver is never reached; private and
// link-local literals and plain http are refused before any connection.
func TestHTTPRefusesAddresses(t *testing.T) {
	srv, hits := receiver(t, func(w http.ResponseWriter, r *http.Request) {})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	strict := NewHTTPDeliverer(HTTPConfig{Timeout: 2 * time.Second})
	for _, u := range []string{
		"https://127.0.0.1:" + port + "/hook", // refused at dial (the policy), before TLS
		"https://localhost:" + port + "/hook", // resolves to loopback
	} {
		err := strict.Post(context.Background(), HTTPRequest{URL: u, Body: []byte("x")})
		if !IsPermanent(err) || !errors.Is(err, safehttp.ErrForbiddenAddress) {
			t.Fatalf("POST %s without AllowLoopback: %v; want a permanent ErrForbiddenAddress", u, err)
		}
	}
	// Data only: these addresses are never dialled, the URL check refuses them.
	for _, u := range []string{"https://10.0.0.1/hook", "https://169.254.169.254/latest/meta-data", "https://[fd00::1]/hook"} {
		err := loopbackPoster().Post(context.Background(), HTTPRequest{URL: u})
		if !IsPermanent(err) || !errors.Is(err, safehttp.ErrForbiddenAddress) {
			t.Fatalf("POST %s: %v; want a permanent ErrForbiddenAddress", u, err)
		}
	}
	for _, u := range []string{"http://rp.example/logout", "ftp://rp.example/x", "/relative", "https://user:pw@rp.example/x"} {
		if err := strict.Post(context.Background(), HTTPRequest{URL: u}); !IsPermanent(err) {
			t.Fatalf("POST %s: %v; want a permanent refusal", u, err)
		}
	}
	if err := strict.Post(context.Background(), HTTPRequest{URL: "http://rp.example/logout"}); !strings.Contains(err.Error(), "must be https") {
		t.Fatalf("plain http: %v; want it to say https is required", err)
	}
	// With AllowLoopback, plain http goes to loopback only.
	if err := loopbackPoster().Post(context.Background(), HTTPRequest{URL: "http://rp.example/logout"}); !IsPermanent(err) {
		t.Fatalf("plain http to a public name with AllowLoopback: %v; want refused", err)
	}
	if err := loopbackPoster().Post(context.Background(), HTTPRequest{URL: srv.URL + "/hook"}); err != nil {
		t.Fatalf("plain http to loopback with AllowLoopback: %v", err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the receiver was reached %d times; want once (the allowed request)", n)
	}
}

// TestHTTPTransientFailures: a refused connection and a receiver slower than the timeout are
// failures to retry, not permanent ones; their texts keep the URL's query out.
func TestHTTPTransientFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/hook?token=s3cr3t"
	ln.Close()
	slow, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	h := NewHTTPDeliverer(HTTPConfig{AllowLoopback: true, Timeout: 200 * time.Millisecond})
	for _, u := range []string{down, slow.URL + "/hook?token=s3cr3t"} {
		err := h.Post(context.Background(), HTTPRequest{URL: u})
		if err == nil || IsPermanent(err) {
			t.Fatalf("POST %s: %v; want a failure to retry", u, err)
		}
		if strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "/hook?…") {
			t.Fatalf("error %q; want the endpoint named without its query", err)
		}
	}
	five, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	if err := h.Post(context.Background(), HTTPRequest{URL: five.URL + "/x?k=s3cr3t"}); strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error %q quotes the query", err)
	}
}

// TestHTTPQuotesRefusals: a refusal's error quotes the start of the response, printable only.
func TestHTTPQuotesRefusals(t *testing.T) {
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "{\"err\":\"invalid_key\",\n\t\"description\":\"\x1b[31mkey unknown\"}"+strings.Repeat("x", 1000))
	})
	err := loopbackPoster().Post(context.Background(), HTTPRequest{URL: srv.URL})
	msg := err.Error()
	if !IsPermanent(err) || !strings.Contains(msg, `{"err":"invalid_key", "description":"`) || strings.ContainsAny(msg, "\x1b\n\t") ||
		len(msg) > 400 {
		t.Fatalf("error %q; want the body's start quoted, printable, bounded", msg)
	}
}

// TestHTTPSWithRootCAs: an https receiver is reached when its certificate authority is trusted,
// and its certificate refused (a failure to retry: it may be fixed) when not.
func TestHTTPSWithRootCAs(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	trusted := NewHTTPDeliverer(HTTPConfig{AllowLoopback: true, RootCAs: pool})
	if err := trusted.Post(context.Background(), HTTPRequest{URL: srv.URL}); err != nil {
		t.Fatalf("https with the CA trusted: %v", err)
	}
	untrusted := NewHTTPDeliverer(HTTPConfig{AllowLoopback: true})
	if err := untrusted.Post(context.Background(), HTTPRequest{URL: srv.URL}); err == nil || IsPermanent(err) {
		t.Fatalf("https with an unknown CA: %v; want a failure to retry", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 7 ", 7 * time.Second},
		{"-5", 0},
		{"1.5", 0},
		{"99999999999999999999", maxRetryAfter},
		{"86401", maxRetryAfter},
		{now.Add(time.Hour).Format(http.TimeFormat), time.Hour},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{"Mon, 32 Foo 2030", 0},
	} {
		if got := parseRetryAfter(tc.v, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v; want %v", tc.v, got, tc.want)
		}
	}
}
