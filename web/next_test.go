package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rescind/rescind/internal/browsertest"
)

// asOrigin is the origin of the server in these tests.
const asOrigin = "https://as.example"

// nextCases are "next" values an attacker may put in a login link: each must leave the browser on
// asOrigin. The encoded forms are what the value becomes after the query string is decoded once.
var nextCases = []string{
	"/oauth2/authorize?client_id=app&state=x%2Fy", "/account/apps", "/", "", "/a/../..//evil.example",
	"//evil.example", "///evil.example", "/\\evil.example", "\\/evil.example", "\\\\evil.example",
	"/\t/evil.example/x", "/\n/evil.example/x", "/\r/evil.example/x", "\t//evil.example", " //evil.example",
	"/\x00/evil.example", "/\x0b/evil.example", "/\x7f/evil.example", "/%09/evil.example", "/%2F/evil.example",
	"https://evil.example", "http://evil.example/", "https:evil.example", "//evil.example@as.example",
	"javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "/\u3000/evil.example", "/\u2028/evil.example",
	"/.//evil.example", "/x#//evil.example", "/?//evil.example", "\u0001//evil.example", "///\\evil.example",
	"https://as.example.evil.example/", "//as.example.evil.example", "/\\/evil.example", "/\t\\evil.example",
	// The cases, and their encoded and mixed forms.
	"/\t/evil.example/x", "/%09/evil.example/x", "/%0A/evil.example", "/%0d%0a/evil.example", "/%5Cevil.example", "/%5C%5Cevil.example",
	"%2F%2Fevil.example", "/%2F%2Fevil.example", "/%252F%252Fevil.example", "//%09evil.example", "/\r\n/evil.example", "/\t\t/evil.example",
	"HTTPS://evil.example", "ftp://evil.example/x", "vbscript:msgbox(1)", "//evil.example:443/x", "/%2e%2e//evil.example",
	"/../evil.example", "/./\\evil.example", "\x00//evil.example", "/ /evil.example", "/\u00a0/evil.example", "/\ufeff/evil.example",
}

// loginRedirect returns the Location a successful login sends for next (as handleLogin does).
func loginRedirect(next string) string {
	w := httptest.NewRecorder()
	http.Redirect(w, httptest.NewRequest(http.MethodPost, asOrigin+"/login", nil), safeNext(next), http.StatusSeeOther)
	return w.Header().Get("Location")
}

// browserOrigin returns the origin a browser on asOrigin/login navigates to when it follows
// Location loc, modelled on the WHATWG URL standard's parser: leading and trailing C0 controls
// and spaces are trimmed, every tab and newline removed, and a backslash read as a slash (the
// base is https, a special scheme); the rest is RFC 3986 reference resolution. It returns "" for
// a reference the model cannot parse, which callers treat as leaving the origin.
func browserOrigin(loc string) string {
	loc = strings.TrimFunc(loc, func(r rune) bool { return r <= ' ' })
	loc = strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, loc)
	ref, err := url.Parse(loc)
	if err != nil || ref.Opaque != "" {
		return ""
	}
	base, _ := url.Parse(asOrigin + "/login")
	u := base.ResolveReference(ref)
	return u.Scheme + "://" + u.Host
}

// TestSafeNext: every hostile next stays on the origin (by the browser model), and ordinary
// paths are kept as they are.
func TestSafeNext(t *testing.T) {
	for _, next := range nextCases {
		if loc := loginRedirect(next); browserOrigin(loc) != asOrigin {
			t.Errorf("next %q: Location %q leaves the origin", next, loc)
		}
	}
	for _, next := range []string{"/oauth2/authorize?client_id=app&state=x%2Fy", "/account/apps", "/account/sessions?x=1", "/account/sessions"} {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q, want it unchanged", next, got)
		}
	}
}

// TestSafeNextInBrowser checks the same cases with a real browser's URL resolution: Chromium
// resolves each Location against the login page's URL.
func TestSafeNextInBrowser(t *testing.T) {
	browser := browsertest.Start(t)
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	locs := make([]string, len(nextCases))
	for i, next := range nextCases {
		locs[i] = loginRedirect(next)
	}
	in, _ := json.Marshal(locs)
	js := `(` + string(in) + `).map(l => { try { return new URL(l, "` + asOrigin + `/login").origin } catch (e) { return "error: " + e } })`
	origins, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js))
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range origins {
		if o != asOrigin {
			t.Errorf("next %q: Chromium resolves Location %q to origin %q", nextCases[i], locs[i], o)
		}
	}
}
