package oauth

import (
	"strconv"
	"unicode/utf8"
)

// The two responses written most (a token response and an introspection answer) are encoded
// by hand: encoding/json's reflection, and its re-validation of token.Audience's MarshalJSON
// output, were a measurable share of a request's CPU (issue 20). The output is byte for byte
// what encoding/json writes for the same struct (TestJSONBodiesMatchEncodingJSON and
// FuzzJSONBodies hold it to that), so no client can tell.

// jsonBody is a response that encodes itself.
type jsonBody interface {
	appendJSON(b []byte) []byte
}

// appendJSON is json.Marshal(r).
func (r tokenResponse) appendJSON(b []byte) []byte {
	b = append(b, `{"access_token":`...)
	b = appendJSONString(b, r.AccessToken)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, r.TokenType)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, r.ExpiresIn, 10)
	if r.RefreshToken != "" {
		b = append(b, `,"refresh_token":`...)
		b = appendJSONString(b, r.RefreshToken)
	}
	if r.Scope != "" {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, r.Scope)
	}
	if r.IDToken != "" {
		b = append(b, `,"id_token":`...)
		b = appendJSONString(b, r.IDToken)
	}
	return append(b, '}')
}

// appendJSON is json.Marshal(r).
func (r introspection) appendJSON(b []byte) []byte {
	b = append(b, `{"active":`...)
	b = strconv.AppendBool(b, r.Active)
	if r.Scope != "" {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, r.Scope)
	}
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, r.ClientID)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, r.TokenType)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, r.Exp, 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, r.Iat, 10)
	if r.Sub != "" {
		b = append(b, `,"sub":`...)
		b = appendJSONString(b, r.Sub)
	}
	if len(r.Aud) > 0 { // token.Audience: one value as a string, more as an array
		b = append(b, `,"aud":`...)
		if len(r.Aud) == 1 {
			b = appendJSONString(b, r.Aud[0])
		} else {
			b = append(b, '[')
			for i, a := range r.Aud {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, a)
			}
			b = append(b, ']')
		}
	}
	b = append(b, `,"iss":`...)
	b = appendJSONString(b, r.Iss)
	if r.Jti != "" {
		b = append(b, `,"jti":`...)
		b = appendJSONString(b, r.Jti)
	}
	if r.Cnf != nil {
		b = append(b, `,"cnf":{"jkt":`...)
		b = appendJSONString(b, r.Cnf.JKT)
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, escaped as encoding/json escapes it: quotes,
// backslashes and control characters; <, > and & (HTML-safe); U+2028 and U+2029; and each
// byte of invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
