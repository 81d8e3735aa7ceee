package main

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// decodeJWTPayload returns a JWT's payload without verifying it (the middleware tests verify).
func decodeJWTPayload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPublishedStatusList fetches the status list a JWT points at, as a resource server would,
// and decodes it with an implementation written here from the draft (base64url, zlib, then the
// least significant bits first): the revoked token's entry is 1, another token's is 0.
func TestPublishedStatusList(t *testing.T) {
	srv, app, _ := jwtSetup(t)
	revoked, kept := jwtToken(t, srv, app), jwtToken(t, srv, app)
	srv.revoke(app.ClientID, app.ClientSecret, revoked)
	ref := func(tok string) (string, int64) {
		st := decodeJWTPayload(t, tok)["status"].(map[string]any)["status_list"].(map[string]any)
		return st["uri"].(string), int64(st["idx"].(float64))
	}
	uri, idx := ref(revoked)
	uri2, idx2 := ref(kept)
	if uri != uri2 || idx == idx2 {
		t.Fatalf("tokens of one instance: lists %s %s, indices %d %d", uri, uri2, idx, idx2)
	}
	req, _ := http.NewRequest("GET", uri, nil)
	req.Header.Set("Accept", "application/statuslist+jwt")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/statuslist+jwt" {
		t.Fatalf("status list: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(string(body), ".")[0])
	if !strings.Contains(string(header), `"typ":"statuslist+jwt"`) {
		t.Fatalf("header %s", header)
	}
	claims := decodeJWTPayload(t, string(body))
	sl := claims["status_list"].(map[string]any)
	if claims["sub"] != uri || sl["bits"] != 1.0 || claims["ttl"] == nil || claims["iat"] == nil || claims["exp"] == nil {
		t.Fatalf("claims %v", claims)
	}
	z, err := base64.RawURLEncoding.DecodeString(sl["lst"].(string))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	bit := func(i int64) int { return int(raw[i/8]>>(i%8)) & 1 }
	if bit(idx) != 1 || bit(idx2) != 0 {
		t.Fatalf("entry of the revoked token = %d, of the other = %d; want 1 and 0", bit(idx), bit(idx2))
	}
	ones := 0
	for i := int64(0); i < int64(len(raw))*8; i++ {
		ones += bit(i)
	}
	if ones != 1 {
		t.Fatalf("%d entries set; want exactly the revoked token's", ones)
	}
}

// TestEventsResume revokes three tokens, then reconnects with the first event's id as
// Last-Event-ID and gets exactly the other two.
func TestEventsResume(t *testing.T) {
	srv, app, rs := jwtSetup(t)
	var jtis []string
	for range 3 {
		tok := jwtToken(t, srv, app)
		jtis = append(jtis, decodeJWTPayload(t, tok)["jti"].(string))
		srv.revoke(app.ClientID, app.ClientSecret, tok)
	}
	read := func(lastID string, n int) (ids []string, got []string) {
		req, _ := http.NewRequest("GET", srv.url+"/oauth2/revocations/events?from=start", nil)
		req.SetBasicAuth(rs.ClientID, rs.ClientSecret)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		hc := &http.Client{Timeout: 10 * time.Second}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() && len(got) < n {
			line := sc.Text()
			if id, ok := strings.CutPrefix(line, "id: "); ok {
				ids = append(ids, id)
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var e map[string]any
				json.Unmarshal([]byte(data), &e)
				got = append(got, e["jti"].(string))
			}
		}
		return ids, got
	}
	ids, all := read("", 3)
	if strings.Join(all, ",") != strings.Join(jtis, ",") {
		t.Fatalf("events %v; want %v in order", all, jtis)
	}
	_, rest := read(ids[0], 2)
	if strings.Join(rest, ",") != strings.Join(jtis[1:], ",") {
		t.Fatalf("after Last-Event-ID %s: %v; want %v", ids[0], rest, jtis[1:])
	}
	req, _ := http.NewRequest("GET", srv.url+"/oauth2/revocations/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("unauthenticated event stream: %d", res.StatusCode)
	}

	// A graceful stop does not wait for open streams (Shutdown's own timeout is 10 s).
	req, _ = http.NewRequest("GET", srv.url+"/oauth2/revocations/events", nil)
	req.SetBasicAuth(rs.ClientID, rs.ClientSecret)
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	start := time.Now()
	srv.stop()
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("stopping with an open event stream took %v", d)
	}
}
