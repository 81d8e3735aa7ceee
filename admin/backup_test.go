package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestBackupEndpoint(t *testing.T) {
	var wrote []string
	backup := func(_ context.Context, path string) (int64, error) {
		switch path {
		case "/exists.db":
			return 0, fmt.Errorf("sqlite: backup: %w", &os.PathError{Op: "open", Path: path, Err: os.ErrExist})
		case "/nodir/x.db":
			return 0, fmt.Errorf("sqlite: backup: %w", &os.PathError{Op: "open", Path: path, Err: errors.New("no such file or directory")})
		}
		wrote = append(wrote, path)
		return 4096, nil
	}
	const token = "an-admin-token-of-at-least-32-bytes!"
	cases := []struct {
		name       string
		backup     func(context.Context, string) (int64, error)
		tcp        bool
		auth       string
		body       string
		wantStatus int
		wantBody   string
	}{
		{"written", backup, false, "", `{"path":"/backups/r.db"}`, 200, `"bytes": 4096`},
		{"existing file", backup, false, "", `{"path":"/exists.db"}`, 409, "never overwrites"},
		{"missing directory", backup, false, "", `{"path":"/nodir/x.db"}`, 500, "no such file or directory"},
		{"relative path", backup, false, "", `{"path":"r.db"}`, 400, "absolute"},
		{"unknown field", backup, false, "", `{"path":"/r.db","overwrite":true}`, 400, "invalid_request"},
		{"PostgreSQL", nil, false, "", `{"path":"/r.db"}`, 501, "pg_dump"},
		{"over TCP", backup, true, "Bearer " + token, `{"path":"/tcp.db"}`, 403, "admin socket only"},
		{"over TCP without token", backup, true, "", `{"path":"/tcp.db"}`, 401, "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Backup: tc.backup, Token: token})
			req := httptest.NewRequest("POST", "/admin/v1/backup", strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			s.Handler(tc.tcp).ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Fatalf("%d %s; want %d with %q", rec.Code, rec.Body.String(), tc.wantStatus, tc.wantBody)
			}
			if rec.Code == 200 {
				var res BackupResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.Path != "/backups/r.db" {
					t.Fatalf("response %s (%v)", rec.Body.String(), err)
				}
			}
		})
	}
	if len(wrote) != 1 || wrote[0] != "/backups/r.db" {
		t.Fatalf("backups taken: %v; want only the one allowed", wrote)
	}
}
