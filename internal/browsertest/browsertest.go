// Package browsertest starts a headless Chromium for tests (Debian's chromium, driven by
// chromedp). Without a browser a test skips, or fails when RESCIND_TEST_REQUIRE names "browser".
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/rescind/rescind/internal/testenv"
)

// Path finds the browser: RESCIND_CHROMIUM, else Debian's chromium.
func Path(tb testing.TB) string {
	tb.Helper()
	for _, p := range []string{os.Getenv("RESCIND_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := exec.LookPath(p); err == nil {
				return p
			}
		}
	}
	testenv.Unavailable(tb, "browser", "no chromium (install Debian's chromium, or set RESCIND_CHROMIUM)")
	return ""
}

// Start starts a headless browser with a fresh profile and returns its context; the browser
// stops when the test ends. It navigates to about:blank first, so the caller may put a timeout
// on what follows (a timeout on the very first action would stop the browser with it). If the
// test fails, a screenshot of the page is saved and its path logged.
func Start(tb testing.TB) context.Context {
	tb.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Path(tb)), chromedp.NoSandbox,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(tb.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(actx)
	shots := tb.TempDir()
	tb.Cleanup(func() {
		if tb.Failed() {
			if png, err := chromedp.Run(browser, chromedp.FullScreenshot(100)); err == nil {
				p := filepath.Join(shots, "failure.png")
				if os.WriteFile(p, png, 0o600) == nil {
					tb.Logf("screenshot of the failure: %s", p)
				}
			}
		}
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		tb.Fatalf("starting chromium: %v", err)
	}
	return browser
}
