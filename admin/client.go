package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rescind/rescind/internal/unixsock"
)

// Client calls the admin API.
type Client struct {
	// BaseURL is the API's URL, for example http://127.0.0.1:9090. For a Unix socket use
	// NewUnixClient.
	BaseURL string
	// Token is sent as a bearer token when set.
	Token string
	// HTTP is the client used. If nil, http.DefaultClient is used.
	HTTP *http.Client
}

// NewUnixClient returns a Client that talks to the API over the Unix socket at path.
func NewUnixClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return unixsock.Dial(ctx, path)
		},
	}
	return &Client{BaseURL: "http://rescind-admin", HTTP: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// APIError is an error answer from the admin API.
type APIError struct {
	Status int
	ErrorResponse
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Description != "" {
		return fmt.Sprintf("%s: %s (HTTP %d)", e.ErrorResponse.Error, e.Description, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.ErrorResponse.Error, e.Status)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin: encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin: cannot reach the server's admin API (is `rescind serve` running with this data dir or admin URL?): %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin: reading response: %w", err)
	}
	if resp.StatusCode >= 300 {
		ae := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(b, &ae.ErrorResponse) != nil || ae.ErrorResponse.Error == "" {
			ae.ErrorResponse.Error = strings.TrimSpace(string(b))
		}
		return ae
	}
	if text, ok := out.(*string); ok {
		*text = string(b) // a text answer (metrics)
		return nil
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("admin: decoding response: %w", err)
		}
	}
	return nil
}

// CreateClient registers a client. The returned ClientInfo carries the secret, shown only once.
func (c *Client) CreateClient(ctx context.Context, req CreateClientRequest) (ClientInfo, error) {
	var out ClientInfo
	err := c.do(ctx, http.MethodPost, "/admin/v1/clients", req, &out)
	return out, err
}

// ListClients returns every client.
func (c *Client) ListClients(ctx context.Context) ([]ClientInfo, error) {
	var out []ClientInfo
	err := c.do(ctx, http.MethodGet, "/admin/v1/clients", nil, &out)
	return out, err
}

// GetClient returns one client.
func (c *Client) GetClient(ctx context.Context, id string) (ClientInfo, error) {
	var out ClientInfo
	err := c.do(ctx, http.MethodGet, "/admin/v1/clients/"+url.PathEscape(id), nil, &out)
	return out, err
}

// UpdateClient changes the fields of a client that req gives.
func (c *Client) UpdateClient(ctx context.Context, id string, req UpdateClientRequest) (ClientInfo, error) {
	var out ClientInfo
	err := c.do(ctx, http.MethodPatch, "/admin/v1/clients/"+url.PathEscape(id), req, &out)
	return out, err
}

// RotateSecret gives a client a new secret, returned in ClientSecret; the old one works for
// req.Overlap more.
func (c *Client) RotateSecret(ctx context.Context, id string, req RotateSecretRequest) (ClientInfo, error) {
	var out ClientInfo
	err := c.do(ctx, http.MethodPost, "/admin/v1/clients/"+url.PathEscape(id)+"/rotate-secret", req, &out)
	return out, err
}

// DeleteClient deletes a client and revokes all its tokens.
func (c *Client) DeleteClient(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/admin/v1/clients/"+url.PathEscape(id), nil, nil)
}

// RotateKeys adds a new token-sealing key and JWT signing key and returns their ids.
func (c *Client) RotateKeys(ctx context.Context, req RotateKeysRequest) (RotateKeysResponse, error) {
	var out RotateKeysResponse
	err := c.do(ctx, http.MethodPost, "/admin/v1/keys/rotate", req, &out)
	return out, err
}

// ListKeys returns every key with its state.
func (c *Client) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := c.do(ctx, http.MethodGet, "/admin/v1/keys", nil, &out)
	return out, err
}

// RetireKey retires the key kid at once.
func (c *Client) RetireKey(ctx context.Context, kid string) (RetireKeyResponse, error) {
	var out RetireKeyResponse
	err := c.do(ctx, http.MethodPost, "/admin/v1/keys/"+url.PathEscape(kid)+"/retire", nil, &out)
	return out, err
}

// Metrics returns the Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var text string
	err := c.do(ctx, http.MethodGet, "/metrics", nil, &text)
	return text, err
}

// CreateUser creates a local user.
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (UserInfo, error) {
	var out UserInfo
	err := c.do(ctx, http.MethodPost, "/admin/v1/users", req, &out)
	return out, err
}

// ListUsers returns every user.
func (c *Client) ListUsers(ctx context.Context) ([]UserInfo, error) {
	var out []UserInfo
	err := c.do(ctx, http.MethodGet, "/admin/v1/users", nil, &out)
	return out, err
}

// UpdateUser changes a user's name or e-mail address.
func (c *Client) UpdateUser(ctx context.Context, username string, req UpdateUserRequest) (UserInfo, error) {
	var out UserInfo
	err := c.do(ctx, http.MethodPatch, "/admin/v1/users/"+url.PathEscape(username), req, &out)
	return out, err
}

// DeleteUser deletes a user by username, ends all their sessions and revokes all their grants.
func (c *Client) DeleteUser(ctx context.Context, username string) (UserResult, error) {
	var out UserResult
	err := c.do(ctx, http.MethodDelete, "/admin/v1/users/"+url.PathEscape(username), nil, &out)
	return out, err
}

// UserSessions returns a user's active sign-in sessions.
func (c *Client) UserSessions(ctx context.Context, username string) ([]SessionInfo, error) {
	var out []SessionInfo
	err := c.do(ctx, http.MethodGet, "/admin/v1/users/"+url.PathEscape(username)+"/sessions", nil, &out)
	return out, err
}

// LogoutUser ends every sign-in session of a user.
func (c *Client) LogoutUser(ctx context.Context, username string) (UserResult, error) {
	var out UserResult
	err := c.do(ctx, http.MethodPost, "/admin/v1/users/"+url.PathEscape(username)+"/logout", nil, &out)
	return out, err
}

// SetPassword gives a user a new password, which ends all their sessions (and, with
// req.RevokeGrants, revokes all their grants).
func (c *Client) SetPassword(ctx context.Context, username string, req SetPasswordRequest) (UserResult, error) {
	var out UserResult
	err := c.do(ctx, http.MethodPut, "/admin/v1/users/"+url.PathEscape(username)+"/password", req, &out)
	return out, err
}

// RevokeAll revokes in bulk by user, client, or both.
func (c *Client) RevokeAll(ctx context.Context, req RevokeAllRequest) (RevokeResult, error) {
	var out RevokeResult
	err := c.do(ctx, http.MethodPost, "/admin/v1/revoke-all", req, &out)
	return out, err
}

// Audit returns up to limit audit entries, newest first.
func (c *Client) Audit(ctx context.Context, limit int) ([]AuditInfo, error) {
	var out []AuditInfo
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/admin/v1/audit?limit=%d", limit), nil, &out)
	return out, err
}

// Backup has the server write a consistent copy of its SQLite database to path, a new file on
// the server's machine (only over the admin socket).
func (c *Client) Backup(ctx context.Context, path string) (BackupResponse, error) {
	var out BackupResponse
	err := c.do(ctx, http.MethodPost, "/admin/v1/backup", BackupRequest{Path: path}, &out)
	return out, err
}

// CreateRegistrationToken makes an initial access token for dynamic client registration; the
// answer carries it, shown only once.
func (c *Client) CreateRegistrationToken(ctx context.Context, req CreateRegistrationTokenRequest) (RegistrationTokenInfo, error) {
	var out RegistrationTokenInfo
	err := c.do(ctx, http.MethodPost, "/admin/v1/registration-tokens", req, &out)
	return out, err
}

// ListRegistrationTokens returns every initial access token (without the tokens).
func (c *Client) ListRegistrationTokens(ctx context.Context) ([]RegistrationTokenInfo, error) {
	var out []RegistrationTokenInfo
	err := c.do(ctx, http.MethodGet, "/admin/v1/registration-tokens", nil, &out)
	return out, err
}

// DeleteRegistrationToken deletes an initial access token.
func (c *Client) DeleteRegistrationToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/admin/v1/registration-tokens/"+url.PathEscape(id), nil, nil)
}
