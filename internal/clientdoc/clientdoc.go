// Package clientdoc resolves Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document, as the Model Context Protocol's authorization
// specification uses them): a client whose client_id is an https URL publishes its metadata
// (RFC 7591 §2) as a JSON document at that URL, and the authorization server fetches it instead
// of keeping a registration.
//
// Fetching a URL that anyone may send is a server-side request forgery risk, so every fetch goes
// through package internal/safehttp: https only, to public addresses only (loopback, and plain
// http on loopback, only in development, AllowLoopback), no redirect followed, a body of at most
// MaxBytes (5 KiB by default, as the draft suggests) within Timeout. A document is used only if
// its client_id equals its URL exactly (§4), it claims no shared secret (§4: the client is
// public, token_endpoint_auth_method "none") and its redirect URIs obey the rules of every
// registration (package internal/redirect). Documents are cached per their Cache-Control
// max-age (or Expires), held at least MinTTL and at most MaxTTL; a failure is remembered for
// FailureTTL, so a URL that cannot be used costs one fetch at most that often. At most
// MaxConcurrent fetches run at once, MaxPerHost per host and one per URL; a fetch finding no
// slot waits QueueWait for one, then fails (ErrBusy).
package clientdoc

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/redirect"
	"github.com/rescind/rescind/internal/safehttp"
)

// Config configures a Resolver. The zero value is usable.
type Config struct {
	// AllowLoopback lets documents be fetched from loopback addresses, and over plain http from
	// a loopback host (127.0.0.1, [::1], localhost), and lets their redirect URIs use plain http
	// off loopback: development only (serve --allow-insecure-redirect).
	AllowLoopback bool
	// RootCAs are the certificate authorities trusted for https. If nil, the system's.
	RootCAs *x509.CertPool
	// MaxBytes bounds a document. If zero, 5 KiB.
	MaxBytes int64
	// Timeout bounds a fetch, from connecting to the last byte. If zero, 5 seconds.
	Timeout time.Duration
	// MinTTL and MaxTTL bound how long a document is cached, whatever its headers say. If
	// zero, 1 minute and 24 hours. DefaultTTL is used without any cache header; if zero, 5
	// minutes.
	MinTTL, MaxTTL, DefaultTTL time.Duration
	// FailureTTL is how long a URL whose document could not be used is not fetched again. If
	// zero, 30 seconds.
	FailureTTL time.Duration
	// MaxConcurrent bounds the fetches running at once; beyond it a fetch waits up to QueueWait
	// for one to end, then Resolve fails with ErrBusy. If zero, 16.
	MaxConcurrent int
	// MaxPerHost bounds the fetches running at once from one host (the URL's host name), so that
	// documents that stall on one host hold at most that many of MaxConcurrent; beyond it a
	// fetch waits up to QueueWait too. If zero, 2.
	MaxPerHost int
	// QueueWait is how long a fetch waits for a free slot before ErrBusy. If zero, 1 second.
	QueueWait time.Duration
	// DialTimeout bounds connecting to the host and the TLS handshake, within Timeout. If zero,
	// 2 seconds.
	DialTimeout time.Duration
	// MaxEntries bounds the cache; when full it is emptied. If zero, 10000.
	MaxEntries int
	// HTTPClient, if set, makes the requests instead of a safehttp client (tests only: it must
	// enforce the same address policy).
	HTTPClient *http.Client
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Error is a document that cannot be used, and why, in words fit for the person who followed a
// link naming the client: nothing of the server's network is in it.
type Error struct {
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *Error) Error() string { return "client metadata document: " + e.Reason }

// ErrBusy is returned by Resolve when MaxConcurrent fetches (or MaxPerHost of the URL's host)
// were running for all of QueueWait.
var ErrBusy = errors.New("clientdoc: too many metadata documents are being fetched")

type entry struct {
	client rescind.Client
	err    error
	until  time.Time
}

// Resolver fetches, checks and caches metadata documents. It is safe for concurrent use.
type Resolver struct {
	cfg  Config
	hc   *http.Client
	sem  chan struct{}
	mu   sync.Mutex
	docs map[string]entry
	// hosts are the fetches under way, by host name (MaxPerHost); freed is closed and replaced
	// whenever one ends, waking the fetches waiting for their host.
	hosts map[string]int
	freed chan struct{}
	// inflight are the fetches under way, by URL: a second request for one waits for it.
	inflight map[string]chan struct{}
}

// New returns a Resolver for cfg.
func New(cfg Config) *Resolver {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 5 << 10
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MinTTL <= 0 {
		cfg.MinTTL = time.Minute
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 24 * time.Hour
	}
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = 5 * time.Minute
	}
	if cfg.FailureTTL <= 0 {
		cfg.FailureTTL = 30 * time.Second
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 16
	}
	if cfg.MaxPerHost <= 0 {
		cfg.MaxPerHost = 2
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = safehttp.NewClient(safehttp.Options{Policy: safehttp.Policy{AllowLoopback: cfg.AllowLoopback}, Timeout: cfg.Timeout,
			DialTimeout: cfg.DialTimeout, RootCAs: cfg.RootCAs})
		// No redirect is followed (its target is never dialled): the 3xx itself is the answer.
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return &Resolver{cfg: cfg, hc: hc, sem: make(chan struct{}, cfg.MaxConcurrent), docs: map[string]entry{},
		inflight: map[string]chan struct{}{}, hosts: map[string]int{}, freed: make(chan struct{})}
}

// IsClientID reports whether id has the form of a metadata document's URL (§3): an https URL
// with a path, without a fragment, user info, or dot segments; in development (AllowLoopback),
// also an http URL on a loopback host. It says nothing of whether the document can be fetched.
func (r *Resolver) IsClientID(id string) bool {
	return r.checkURL(id) == nil
}

func (r *Resolver) checkURL(id string) error {
	if len(id) > redirect.MaxLength {
		return &Error{"its URL is too long"}
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= 0x20 || c >= 0x7f {
			return &Error{"its URL must be printable ASCII"}
		}
	}
	u, err := url.Parse(id)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return &Error{"its client_id is not an absolute https URL"}
	case u.Scheme != "https" && !(r.cfg.AllowLoopback && u.Scheme == "http" && loopbackHost(u.Hostname())):
		return &Error{"its client_id must be an https URL"}
	case u.User != nil:
		return &Error{"its URL must not carry user information"}
	case strings.Contains(id, "#"):
		return &Error{"its URL must not have a fragment"}
	case u.Path == "" || u.Path == "/":
		return &Error{"its URL must have a path"}
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return &Error{"its URL must not have . or .. path segments"}
		}
	}
	// One spelling per document: the URL is the client's id, and a deleted client's id stays
	// refused (its cut-off) only as that exact string, so a second spelling of the same URL
	// ("HOST", ":443", "host.", a lone "?", "%61") would bring the client back.
	if id != canonicalURL(u) {
		return &Error{"its URL must be written in its canonical form (lower-case host, no default port or trailing dot, no needless escapes, " +
			"a port without leading zeros, an IP address as a dotted quad or compressed IPv6)"}
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		if err := (safehttp.Policy{AllowLoopback: r.cfg.AllowLoopback}).Check(mustAddr(ip)); err != nil {
			return &Error{"its host is not a public internet address"}
		}
	}
	return nil
}

// canonicalURL is u written one way, or "" if its host or port has no canonical form: scheme
// and host in lower case; an IP address as net/netip writes it (IPv6 compressed, in lower case;
// IPv4 as a dotted quad without leading zeros); a port in decimal without leading zeros, none
// for the scheme's default; the path escaped only where it must be, the query (if not empty) as
// it is. A host whose last label is a number (decimal or 0x hexadecimal) that is not such a
// dotted quad ("134744072", "0x8080808", "008.008.008.008", "agent.123") has none: browsers
// and other URL parsers read it as an IPv4 address (WHATWG URL, "ends in a number"), so it
// would be another spelling of one. So is a trailing dot, and an empty port ("host:").
func canonicalURL(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if host == "" || strings.HasSuffix(host, ".") || strings.HasSuffix(u.Host, ":") {
		return ""
	}
	if strings.HasPrefix(u.Host, "[") || strings.Contains(host, ":") {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return ""
		}
		host = "[" + ip.String() + "]"
	} else if labels := strings.Split(host, "."); endsInNumber(labels[len(labels)-1]) {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is4() || ip.String() != host {
			return ""
		}
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return ""
		}
		if !(scheme == "https" && n == 443) && !(scheme == "http" && n == 80) {
			host += ":" + p
		}
	}
	return (&url.URL{Scheme: scheme, Host: host, Path: u.Path, RawQuery: u.RawQuery}).String()
}

// endsInNumber reports whether a host's last label is a number as the WHATWG URL standard's
// IPv4 parser reads one: decimal digits, or 0x (or 0X) and hexadecimal digits (none included).
func endsInNumber(label string) bool {
	if label == "" {
		return false
	}
	digits := label
	hex := len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X')
	if hex {
		digits = label[2:]
	}
	for _, c := range []byte(digits) {
		if !('0' <= c && c <= '9' || hex && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F')) {
			return false
		}
	}
	return true
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Cached reports whether a Resolve of id now needs no fetch: its document, or its failure, is
// cached.
func (r *Resolver) Cached(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.docs[id]
	return ok && r.cfg.Now().Before(e.until)
}

// Resolve returns the client whose client_id is the URL id, from its metadata document: the one
// cached, else the one fetched now. The client is public, registered by metadata document,
// with the redirect URIs, grant types, scope and name the document gives. A document that
// cannot be fetched or used is an *Error; ErrBusy means too many fetches are under way.
func (r *Resolver) Resolve(ctx context.Context, id string) (rescind.Client, error) {
	if err := r.checkURL(id); err != nil {
		return rescind.Client{}, err
	}
	for {
		r.mu.Lock()
		if e, ok := r.docs[id]; ok && r.cfg.Now().Before(e.until) {
			r.mu.Unlock()
			return e.client, e.err
		}
		wait, busy := r.inflight[id]
		if !busy {
			done := make(chan struct{})
			r.inflight[id] = done
			r.mu.Unlock()
			c, err := r.fetch(ctx, id)
			r.mu.Lock()
			delete(r.inflight, id)
			close(done)
			r.mu.Unlock()
			return c, err
		}
		r.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return rescind.Client{}, ctx.Err()
		}
	}
}

// fetch fetches and checks the document of id, and caches the outcome (but for ErrBusy and a
// cancelled request, which say nothing of the document).
func (r *Resolver) fetch(ctx context.Context, id string) (rescind.Client, error) {
	release, err := r.acquire(ctx, id)
	if err != nil {
		return rescind.Client{}, err
	}
	defer release()
	c, ttl, err := r.get(ctx, id)
	if ctx.Err() != nil {
		return rescind.Client{}, ctx.Err()
	}
	if err != nil {
		ttl = r.cfg.FailureTTL
	}
	r.mu.Lock()
	if len(r.docs) >= r.cfg.MaxEntries {
		clear(r.docs)
	}
	r.docs[id] = entry{client: c, err: err, until: r.cfg.Now().Add(ttl)}
	r.mu.Unlock()
	return c, err
}

// acquire waits, up to QueueWait, for a slot to fetch id: one of MaxPerHost for its host, then
// one of MaxConcurrent. It returns the function that gives both back, or ErrBusy (or the
// context's error). Documents stalling on one host thus hold at most MaxPerHost slots, and a
// fetch finding all slots taken waits briefly for one rather than failing at once.
func (r *Resolver) acquire(ctx context.Context, id string) (func(), error) {
	host := ""
	if u, err := url.Parse(id); err == nil {
		host = strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	}
	timer := time.NewTimer(r.cfg.QueueWait)
	defer timer.Stop()
	for {
		r.mu.Lock()
		if r.hosts[host] < r.cfg.MaxPerHost {
			r.hosts[host]++
			r.mu.Unlock()
			break
		}
		freed := r.freed
		r.mu.Unlock()
		select {
		case <-freed:
		case <-timer.C:
			return nil, ErrBusy
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	releaseHost := func() {
		r.mu.Lock()
		if r.hosts[host]--; r.hosts[host] <= 0 {
			delete(r.hosts, host)
		}
		close(r.freed)
		r.freed = make(chan struct{})
		r.mu.Unlock()
	}
	select {
	case r.sem <- struct{}{}:
	case <-timer.C:
		releaseHost()
		return nil, ErrBusy
	case <-ctx.Done():
		releaseHost()
		return nil, ctx.Err()
	}
	return func() {
		<-r.sem
		releaseHost()
	}, nil
}

// get fetches the document of id and returns its client and how long it may be cached.
func (r *Resolver) get(ctx context.Context, id string) (rescind.Client, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return rescind.Client{}, 0, &Error{"its URL is invalid"}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, safehttp.ErrForbiddenAddress):
			return rescind.Client{}, 0, &Error{"its host is not a public internet address"}
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			return rescind.Client{}, 0, &Error{"it could not be fetched in time"}
		}
		return rescind.Client{}, 0, &Error{"it could not be fetched"}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return rescind.Client{}, 0, &Error{"it is redirected: it must be served at its URL"}
	case resp.StatusCode != http.StatusOK:
		return rescind.Client{}, 0, &Error{fmt.Sprintf("fetching it answered HTTP %d", resp.StatusCode)}
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return rescind.Client{}, 0, &Error{"it is not served as application/json"}
	}
	body, err := safehttp.ReadLimited(resp.Body, r.cfg.MaxBytes)
	switch {
	case ctx.Err() != nil:
		// The time ran out while the body was read: whatever was read (a read cut short by the
		// deadline can end without an error) is not the document.
		return rescind.Client{}, 0, &Error{"it could not be fetched in time"}
	case errors.Is(err, safehttp.ErrTooLarge):
		return rescind.Client{}, 0, &Error{fmt.Sprintf("it is larger than %d bytes", r.cfg.MaxBytes)}
	case err != nil:
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return rescind.Client{}, 0, &Error{"it could not be fetched in time"}
		}
		return rescind.Client{}, 0, &Error{"it could not be read"}
	}
	c, err := r.parse(id, body)
	if err != nil {
		return rescind.Client{}, 0, err
	}
	return c, r.ttl(resp.Header), nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ttl is how long a document with headers h may be cached: its Cache-Control max-age (none for
// no-store and no-cache), else its Expires, else DefaultTTL; between MinTTL and MaxTTL.
func (r *Resolver) ttl(h http.Header) time.Duration {
	ttl, found := r.cfg.DefaultTTL, false
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "no-store" || d == "no-cache":
			ttl, found = 0, true
		case strings.HasPrefix(d, "max-age="):
			if n, err := strconv.ParseInt(strings.Trim(d[len("max-age="):], `"`), 10, 64); err == nil && n >= 0 && !found {
				ttl, found = time.Duration(min(n, int64(r.cfg.MaxTTL/time.Second)))*time.Second, true
			}
		}
	}
	if !found {
		if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
			ttl = exp.Sub(r.cfg.Now())
		}
	}
	return min(max(ttl, r.cfg.MinTTL), r.cfg.MaxTTL)
}

// document is the client metadata (RFC 7591 §2) Rescind reads from a document.
type document struct {
	ClientID                *string  `json:"client_id"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope"`
}

// parse checks the document body fetched from id and returns its client.
func (r *Resolver) parse(id string, body []byte) (rescind.Client, error) {
	if !utf8.Valid(body) {
		return rescind.Client{}, &Error{"it is not UTF-8"}
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return rescind.Client{}, &Error{"it is not a JSON object"}
	}
	for _, k := range []string{"client_secret", "client_secret_expires_at"} {
		if _, ok := raw[k]; ok {
			return rescind.Client{}, &Error{"it names a client secret: a client identified by a metadata document has none"}
		}
	}
	var d document
	if err := json.Unmarshal(body, &d); err != nil {
		return rescind.Client{}, &Error{"a member has the wrong type (" + jsonField(err) + ")"}
	}
	if d.ClientID == nil || *d.ClientID != id {
		return rescind.Client{}, &Error{"its client_id is not its own URL"}
	}
	switch d.TokenEndpointAuthMethod {
	case "", rescind.AuthMethodNone:
	default:
		return rescind.Client{}, &Error{`its token_endpoint_auth_method must be "none": a client identified by a metadata document is public`}
	}
	c := rescind.Client{ID: id, Public: true, Registration: rescind.RegistrationMetadataDocument, TokenFormat: rescind.TokenFormatOpaque,
		AllowInsecureRedirect: r.cfg.AllowLoopback, CreatedAt: r.cfg.Now().UTC()}
	gts := d.GrantTypes
	if len(gts) == 0 {
		gts = []string{rescind.GrantAuthorizationCode}
	}
	for _, gt := range gts {
		if gt != rescind.GrantAuthorizationCode && gt != rescind.GrantRefreshToken {
			return rescind.Client{}, &Error{"its grant_types may be only authorization_code and refresh_token"}
		}
		if !slices.Contains(c.GrantTypes, gt) {
			c.GrantTypes = append(c.GrantTypes, gt)
		}
	}
	if !slices.Contains(c.GrantTypes, rescind.GrantAuthorizationCode) {
		return rescind.Client{}, &Error{"its grant_types must include authorization_code"}
	}
	for _, rt := range d.ResponseTypes {
		if rt != "code" {
			return rescind.Client{}, &Error{"its response_types may be only code"}
		}
	}
	if len(d.RedirectURIs) == 0 || len(d.RedirectURIs) > 20 {
		return rescind.Client{}, &Error{"it must list between 1 and 20 redirect_uris"}
	}
	if err := redirect.ValidateAll(d.RedirectURIs, r.cfg.AllowLoopback); err != nil {
		return rescind.Client{}, &Error{err.Error()}
	}
	c.RedirectURIs = d.RedirectURIs
	for _, sc := range strings.Fields(d.Scope) {
		if !rescind.ValidScopeToken(sc) {
			return rescind.Client{}, &Error{"its scope is malformed"}
		}
		if !slices.Contains(c.Scopes, sc) {
			c.Scopes = append(c.Scopes, sc)
		}
	}
	name := strings.TrimSpace(d.ClientName)
	if len(name) > 200 || !ValidName(name) {
		return rescind.Client{}, &Error{"its client_name must be printable UTF-8 of at most 200 bytes, without bidirectional, zero-width or blank " +
			"characters, and with at most 4 combining marks on a character"}
	}
	if name == "" {
		u, _ := url.Parse(id)
		name = u.Host
	}
	c.Name = name
	return c, nil
}

// jsonField names the member a decoding error is about, if it says.
func jsonField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field
	}
	return "malformed JSON"
}

// mustAddr converts an IP parsed by net.ParseIP to a netip.Addr.
func mustAddr(ip net.IP) netip.Addr {
	if v4 := ip.To4(); v4 != nil {
		return netip.AddrFrom4([4]byte(v4))
	}
	return netip.AddrFrom16([16]byte(ip.To16()))
}

// ValidName reports whether name, a client_name a client gives itself and that people are shown
// (consent page, connected apps, client list), is valid UTF-8 without control characters (Cc),
// format characters (Cf: bidirectional overrides and isolates such as U+202E, zero-width
// characters such as U+200B, which let a name display as another: "Rescind \u202eppA nimdA")
// or line and paragraph separators (Zl, Zp); without the letters and symbols that show as
// nothing (blankFiller: the Hangul fillers U+115F, U+1160, U+3164, U+FFA0, the braille blank
// U+2800, and the other default-ignorable ones), which let "Rescind\u3164Admin" pass for
// "Rescind Admin"; and with at most maxMarksPerBase combining marks (Mn, Me) on any character,
// which is more than any writing system stacks, so that a name cannot pile marks over the text
// around it ("Zalgo"). The length is the caller's to bound.
func ValidName(name string) bool {
	if !utf8.ValidString(name) {
		return false
	}
	marks := 0
	for _, r := range name {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || blankFiller(r) {
			return false
		}
		if !unicode.In(r, unicode.Mn, unicode.Me) {
			marks = 0
			continue
		}
		if marks++; marks > maxMarksPerBase {
			return false
		}
	}
	return true
}

// maxMarksPerBase bounds the combining marks a character of a name may carry: Vietnamese, Yoruba,
// Hebrew with points and cantillation, and Indic scripts stay within it.
const maxMarksPerBase = 4

// blankFiller reports whether r is a letter or symbol that displays as blank: a Hangul filler
// (U+115F, U+1160, U+3164, U+FFA0), the braille pattern blank (U+2800), or another character
// Unicode lists as Other_Default_Ignorable_Code_Point (U+034F, U+17B4, U+17B5...) or a musical
// null notehead (U+1D159).
func blankFiller(r rune) bool {
	return r == 0x2800 || r == 0x1D159 || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r)
}
