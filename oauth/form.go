package oauth

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// formType is the media type of a form body.
const formType = "application/x-www-form-urlencoded"

// parseForm reads an application/x-www-form-urlencoded body (RFC 6749 §3.2, Appendix B) of at
// most maxBytes. It refuses other content types, malformed encodings, invalid UTF-8 and, as
// RFC 6749 §3.1 and §3.2 require, any parameter sent more than once, but for those named in
// repeatable (RFC 8707's resource). Parameters in the query string are not read: credentials
// and tokens belong in the body.
func parseForm(w http.ResponseWriter, r *http.Request, maxBytes int64, repeatable ...string) (url.Values, *Error) {
	// The media type as nearly every client sends it needs no parsing (which allocates a map
	// of parameters on every request: issue 20).
	if ct := r.Header.Get("Content-Type"); ct != formType {
		mt, params, err := mime.ParseMediaType(ct)
		if ct == "" || err != nil || mt != formType {
			return nil, errorf(ErrInvalidRequest, http.StatusBadRequest,
				"the request body must be application/x-www-form-urlencoded")
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, errorf(ErrInvalidRequest, http.StatusBadRequest, "the request body must be UTF-8")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errorf(ErrInvalidRequest, http.StatusRequestEntityTooLarge, "the request body is too large")
		}
		return nil, errorf(ErrInvalidRequest, http.StatusBadRequest, "the request body could not be read")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errorf(ErrInvalidRequest, http.StatusBadRequest, "the request body is not valid form encoding")
	}
	for k, vs := range form {
		if len(vs) > 1 && !slices.Contains(repeatable, k) {
			return nil, errorf(ErrInvalidRequest, http.StatusBadRequest, "parameter "+quoteParam(k)+" is included more than once")
		}
		if !utf8.ValidString(k) {
			return nil, errorf(ErrInvalidRequest, http.StatusBadRequest, "parameters must be valid UTF-8")
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, errorf(ErrInvalidRequest, http.StatusBadRequest, "parameters must be valid UTF-8")
			}
		}
	}
	return form, nil
}

// quoteParam renders a parameter name for an error description, bounded and printable.
func quoteParam(k string) string {
	if len(k) > 40 {
		k = k[:40] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, k)
}
