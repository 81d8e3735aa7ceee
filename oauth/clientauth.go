package oauth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
)

// authenticateClient authenticates the client making r, by client_secret_basic (RFC 6749
// §2.3.1), client_secret_post, or, when allowPublic is set, "none" for a public client that sends
// only its client_id (RFC 6749 §2.3, RFC 7009 §5). Using more than one method is refused
// (RFC 6749 §2.3).
func (s *Server) authenticateClient(r *http.Request, form url.Values, allowPublic bool) (rescind.Client, *Error) {
	ctx := r.Context()
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	_, hasFormSecret := form["client_secret"]

	if auth := r.Header.Get("Authorization"); auth != "" {
		id, secret, raw, ok := parseBasic(auth)
		if !ok {
			return rescind.Client{}, invalidClient("the Authorization header is not valid HTTP Basic client authentication")
		}
		if hasFormSecret {
			return rescind.Client{}, errorf(ErrInvalidRequest, http.StatusBadRequest,
				"the client used more than one authentication method")
		}
		if formID != "" && formID != id {
			return rescind.Client{}, errorf(ErrInvalidRequest, http.StatusBadRequest,
				"client_id in the body does not match the authenticated client")
		}
		c, err := s.clients.Authenticate(ctx, id, secret)
		if errors.Is(err, clientreg.ErrBadSecret) && raw != secret {
			// Many clients skip the §2.3.1 form-encoding: accept the secret as sent, too.
			c, err = s.clients.Authenticate(ctx, id, raw)
		}
		return s.clientResult(r, c, err)
	}
	if formID == "" {
		return rescind.Client{}, invalidClient("client authentication is required")
	}
	if hasFormSecret {
		c, err := s.clients.Authenticate(ctx, formID, formSecret)
		return s.clientResult(r, c, err)
	}
	c, err := s.clients.Get(ctx, formID)
	if err == nil && !(allowPublic && c.Public) {
		return rescind.Client{}, invalidClient("client authentication is required")
	}
	return s.clientResult(r, c, err)
}

func (s *Server) clientResult(r *http.Request, c rescind.Client, err error) (rescind.Client, *Error) {
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, rescind.ErrNotFound), errors.Is(err, clientreg.ErrBadSecret):
		return rescind.Client{}, invalidClient("client authentication failed")
	case r.Context().Err() != nil:
		return rescind.Client{}, errorf(ErrInvalidRequest, http.StatusBadRequest, "the request was cancelled")
	default:
		s.log.ErrorContext(r.Context(), "client authentication", "err", err)
		return rescind.Client{}, errServer
	}
}

// parseBasic decodes HTTP Basic credentials and then, per RFC 6749 §2.3.1, the
// application/x-www-form-urlencoded encoding of the client id and secret. raw is the secret
// before that decoding. If the id or secret is not valid form encoding, the text as sent is used.
func parseBasic(header string) (id, secret, raw string, ok bool) {
	scheme, cred, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", "", false
	}
	cred = strings.TrimSpace(cred)
	b, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(cred); err != nil {
			return "", "", "", false
		}
	}
	rawID, rawSecret, found := strings.Cut(string(b), ":")
	if !found || rawID == "" {
		return "", "", "", false
	}
	id, err = url.QueryUnescape(rawID)
	if err != nil {
		id = rawID
	}
	secret, err = url.QueryUnescape(rawSecret)
	if err != nil {
		secret = rawSecret
	}
	return id, secret, rawSecret, true
}
