package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// ClientCredentials obtains an access token with the client credentials grant (RFC 6749 §4.4).
func (c *Client) ClientCredentials(ctx context.Context, scopes ...string) (*oauth2.Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return c.Token(ctx, form)
}

// Refresh exchanges a refresh token for new tokens (RFC 6749 §6). scopes, if given, must not
// exceed those originally granted.
func (c *Client) Refresh(ctx context.Context, refreshToken string, scopes ...string) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, errors.New("client: no refresh token")
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return c.Token(ctx, form)
}

// Token sends a token request with the given parameters (which must include grant_type) and
// returns the RFC 6749 §5.1 response as an *oauth2.Token; every member of the response is
// available through its Extra method.
func (c *Client) Token(ctx context.Context, form url.Values) (*oauth2.Token, error) {
	if form.Get("grant_type") == "" {
		return nil, errors.New("client: grant_type is required")
	}
	b, err := c.post(ctx, "token", form)
	if err != nil {
		return nil, err
	}
	var tr struct {
		AccessToken  string          `json:"access_token"`
		TokenType    string          `json:"token_type"`
		RefreshToken string          `json:"refresh_token"`
		ExpiresIn    json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		return nil, fmt.Errorf("client: token response is not valid JSON: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("client: token response has no access_token")
	}
	var raw map[string]any
	json.Unmarshal(b, &raw) // b is a JSON object: it decoded above
	tok := &oauth2.Token{AccessToken: tr.AccessToken, TokenType: tr.TokenType, RefreshToken: tr.RefreshToken}
	if secs, ok := expiresIn(tr.ExpiresIn); ok && secs > 0 {
		tok.Expiry = time.Now().Add(time.Duration(secs) * time.Second)
		tok.ExpiresIn = secs
	}
	return tok.WithExtra(raw), nil
}

// expiresIn reads expires_in as a number or, as some servers send it, a numeric string.
func expiresIn(raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		n = json.Number(s)
	}
	v, err := n.Int64()
	return v, err == nil
}

// RevokeToken revokes what tok holds: its refresh token first (which, at servers that cascade,
// also kills its access tokens), then its access token. It returns the errors of both calls.
func (c *Client) RevokeToken(ctx context.Context, tok *oauth2.Token) error {
	if tok == nil || (tok.AccessToken == "" && tok.RefreshToken == "") {
		return errors.New("client: no token to revoke")
	}
	var errs []error
	if tok.RefreshToken != "" {
		if err := c.Revoke(ctx, tok.RefreshToken, "refresh_token"); err != nil {
			errs = append(errs, fmt.Errorf("revoking refresh token: %w", err))
		}
	}
	if tok.AccessToken != "" {
		if err := c.Revoke(ctx, tok.AccessToken, "access_token"); err != nil {
			errs = append(errs, fmt.Errorf("revoking access token: %w", err))
		}
	}
	return errors.Join(errs...)
}
