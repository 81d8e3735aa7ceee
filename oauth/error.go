package oauth

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error codes of RFC 6749 §5.2 and RFC 7009 §2.2.1.
const (
	ErrInvalidRequest       = "invalid_request"
	ErrInvalidClient        = "invalid_client"
	ErrInvalidGrant         = "invalid_grant"
	ErrUnauthorizedClient   = "unauthorized_client"
	ErrUnsupportedGrantType = "unsupported_grant_type"
	ErrInvalidScope         = "invalid_scope"
	ErrUnsupportedTokenType = "unsupported_token_type"
	ErrServerError          = "server_error"
)

// Error is a protocol error, rendered as RFC 6749 §5.2 JSON by writeError.
type Error struct {
	// Code is the "error" member.
	Code string
	// Description is the "error_description" member: human-readable, never internal detail.
	Description string
	// Status is the HTTP status code; if zero, 400.
	Status int
	// Challenge, if set, is sent as the WWW-Authenticate header (with 401).
	Challenge string
	// RetryAfter, if positive, is sent as the Retry-After header in seconds.
	RetryAfter int
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Description }

func errorf(code string, status int, desc string) *Error {
	return &Error{Code: code, Status: status, Description: desc}
}

// invalidClient is the RFC 6749 §5.2 answer to failed client authentication: 401 with a challenge
// for the scheme the server supports.
func invalidClient(desc string) *Error {
	return &Error{Code: ErrInvalidClient, Status: http.StatusUnauthorized, Description: desc,
		Challenge: `Basic realm="rescind", charset="UTF-8"`}
}

var errServer = &Error{Code: ErrServerError, Status: http.StatusInternalServerError,
	Description: "the server could not complete the request"}

func writeError(w http.ResponseWriter, e *Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	h := w.Header()
	if e.Challenge != "" {
		h.Set("WWW-Authenticate", e.Challenge)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
}

// writeJSON writes v with the headers RFC 6749 §5.1 requires of token responses, which suit
// every response of these endpoints: nothing here may be cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	if jb, ok := v.(jsonBody); ok {
		b = jb.appendJSON(make([]byte, 0, 512))
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			status = http.StatusInternalServerError
			b = []byte(`{"error":"server_error"}`)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
