package oauth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/accesslog"
	"github.com/rescind/rescind/internal/clientip"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/secret"
)

// MaxClientIDLength bounds the client id an authentication may present (in bytes): a longer
// one is refused (400 invalid_request) before anything is looked up or rate-limited, so that
// no one can make the server hold long keys. The server's own ids are far shorter.
const MaxClientIDLength = 256

func errClientIDTooLong() *Error {
	return errorf(ErrInvalidRequest, http.StatusBadRequest, "client_id is too long")
}

// authenticateClient authenticates the client making r, by client_secret_basic (RFC 6749
// §2.3.1), client_secret_post, or, when allowPublic is set, "none" for a public client that sends
// only its client_id (RFC 6749 §2.3, RFC 7009 §5). Using more than one method is refused
// (RFC 6749 §2.3).
func (s *Server) authenticateClient(r *http.Request, form url.Values, allowPublic bool) (rescind.Client, *Error) {
	// The secret checks of one network hold at most a share of the process's places.
	ctx := secret.WithClaimant(r.Context(), clientip.Network(r.RemoteAddr))
	formID, formSecret := form.Get("client_id"), form.Get("client_secret")
	_, hasFormSecret := form["client_secret"]

	if auth := r.Header.Get("Authorization"); auth != "" {
		id, candidates, ok := parseBasic(auth)
		if !ok {
			s.authFailed(r, "", "the Authorization header is not valid HTTP Basic")
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
		if len(id) > MaxClientIDLength {
			return rescind.Client{}, errClientIDTooLong()
		}
		res, claim, known, perr := s.reserve(r, id, candidates)
		if perr != nil {
			return rescind.Client{}, perr
		}
		if known > 0 {
			// The candidate verified recently goes first: a client whose secret is right only
			// as sent (not form-decoded) does not pay a check of the other on every request.
			candidates = slices.Concat(candidates[known:known+1], candidates[:known], candidates[known+1:])
		}
		var c rescind.Client
		var err error
		// Every candidate is tried until one matches, for an unknown id too, so that a failure
		// costs the same whether the id exists or not (audit of issue 12, finding 3). The first
		// is checked under the claim reserve took on it, if any.
		for i, sec := range candidates {
			if i == 0 {
				c, err = s.clients.AuthenticateClaim(ctx, claim, id, sec)
			} else {
				c, err = s.clients.Authenticate(ctx, id, sec)
			}
			if !errors.Is(err, clientreg.ErrBadSecret) && !errors.Is(err, rescind.ErrNotFound) {
				break
			}
		}
		return s.clientResult(r, id, c, err, res)
	}
	if formID == "" {
		return rescind.Client{}, invalidClient("client authentication is required")
	}
	if len(formID) > MaxClientIDLength {
		return rescind.Client{}, errClientIDTooLong()
	}
	if hasFormSecret {
		res, claim, _, perr := s.reserve(r, formID, []string{formSecret})
		if perr != nil {
			return rescind.Client{}, perr
		}
		c, err := s.clients.AuthenticateClaim(ctx, claim, formID, formSecret)
		return s.clientResult(r, formID, c, err, res)
	}
	c, err := s.clients.Get(ctx, formID)
	if err == nil && !(allowPublic && c.Public) {
		s.authFailed(r, formID, "no client secret")
		return rescind.Client{}, invalidClient("client authentication is required")
	}
	return s.clientResult(r, formID, c, err, nil)
}

// clientResult turns the outcome of authenticating client id into the authenticated client or
// the error to answer. A failed attempt keeps the rate-limit tokens it reserved (res); any other
// outcome gives them back.
func (s *Server) clientResult(r *http.Request, id string, c rescind.Client, err error, res *ratelimit.Reservation) (rescind.Client, *Error) {
	switch {
	case err == nil:
		res.Refund()
		accesslog.SetClientID(r.Context(), c.ID)
		return c, nil
	case errors.Is(err, rescind.ErrNotFound), errors.Is(err, clientreg.ErrBadSecret):
		reason := "wrong secret"
		if errors.Is(err, rescind.ErrNotFound) {
			reason = "unknown client"
		}
		s.authFailed(r, id, reason)
		return rescind.Client{}, invalidClient("client authentication failed")
	}
	res.Refund()
	if perr := s.checkUnfinished(r, id, err); perr != nil {
		return rescind.Client{}, perr
	}
	s.log.ErrorContext(r.Context(), "client authentication", "err", err)
	return rescind.Client{}, errServer
}

// authFailed logs a failed client authentication at info level: the client id as presented (cut
// to 64 bytes), the source address and why; never the secret.
func (s *Server) authFailed(r *http.Request, clientID, reason string) {
	if len(clientID) > 64 {
		clientID = clientID[:64] + "..."
	}
	s.log.InfoContext(r.Context(), "client authentication failed", "client_id", clientID, "remote", r.RemoteAddr, "reason", reason)
}

// limitKeys are the rate-limit buckets of a client authentication attempt: the source network
// (an IPv6 /64 is one party: clientip.Network), and the client id at that network.
func limitKeys(r *http.Request, clientID string) []string {
	n := clientip.Network(r.RemoteAddr)
	return []string{"addr:" + n, "client:" + clientID + "|" + n}
}

// networkKey names the network r comes from, for limits on what one party may create or
// cause (registrations, metadata document fetches): its IPv4 address, or the /64 of its IPv6
// address, which one party commonly holds whole.
func networkKey(r *http.Request) string { return clientip.Network(r.RemoteAddr) }

// reserve takes an attempt's rate-limit tokens (its source address, and the client id there)
// before its secret is checked, so that a burst of concurrent attempts cannot all be checked: at
// most the buckets' tokens are. A secret the server verified recently needs no token (nil): known
// is the index of that one among presented (the readings of the secret), else -1. Otherwise the
// attempt may hold a claim on the check of presented[0] (clientreg.Admit), to be passed to
// AuthenticateClaim. An attempt whose buckets are empty is refused (429 with Retry-After)
// without being checked.
func (s *Server) reserve(r *http.Request, clientID string, presented []string) (res *ratelimit.Reservation, claim *clientreg.Claim, known int, perr *Error) {
	if known, claim = s.clients.Admit(r.Context(), clientID, presented...); known >= 0 {
		return nil, nil, known, nil
	}
	if s.limiter == nil {
		return nil, claim, -1, nil
	}
	res, ok, retry := s.limiter.Reserve(limitKeys(r, clientID)...)
	if ok {
		return res, claim, -1, nil
	}
	claim.Release()
	s.log.WarnContext(r.Context(), "security: client authentication rate limited", "client_id", clientID, "remote", r.RemoteAddr)
	return nil, nil, -1, &Error{Code: "slow_down", Status: http.StatusTooManyRequests, RetryAfter: max(1, int(retry/time.Second)),
		Description: "too many failed client authentications; retry later"}
}

// checkUnfinished is the answer to a secret check of client id that did not run to its end,
// logged: this network's share of the secret gate in use (429 slow_down), the gate full (503
// temporarily_unavailable), or the caller gone (400). It is nil for any other error.
func (s *Server) checkUnfinished(r *http.Request, id string, err error) *Error {
	switch {
	case errors.Is(err, secret.ErrShareInUse):
		s.log.WarnContext(r.Context(), "security: secret check refused: this address's share of the secret checks is in use", "client_id", id, "remote", r.RemoteAddr)
		return &Error{Code: "slow_down", Status: http.StatusTooManyRequests, RetryAfter: 1,
			Description: "too many client authentications at once from this address; retry later"}
	case errors.Is(err, secret.ErrBusy):
		s.log.WarnContext(r.Context(), "secret check refused: too many secret checks under way", "client_id", id, "remote", r.RemoteAddr)
		return &Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Description: "the server is checking too many credentials at once; retry shortly"}
	case r.Context().Err() != nil:
		return errorf(ErrInvalidRequest, http.StatusBadRequest, "the request was cancelled")
	}
	return nil
}

// parseBasic decodes HTTP Basic credentials and then, per RFC 6749 §2.3.1, the
// application/x-www-form-urlencoded encoding of the client id and secret. It returns the secret
// candidates to try, in order and without repeats: the form-decoded secret, the secret as sent
// (many clients skip the §2.3.1 encoding) and, if that is not UTF-8, its bytes read as
// ISO-8859-1 (as some clients, Authlib among them, encode it). The caller tries the next one
// after a wrong secret or an unknown id alike, so that a failure costs the same for both.
func parseBasic(header string) (id string, candidates []string, ok bool) {
	scheme, cred, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", nil, false
	}
	cred = strings.TrimSpace(cred)
	b, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(cred); err != nil {
			return "", nil, false
		}
	}
	rawID, raw, found := strings.Cut(string(b), ":")
	if !found || rawID == "" {
		return "", nil, false
	}
	id, err = url.QueryUnescape(rawID)
	if err != nil || !utf8.ValidString(id) {
		id = latin1ToUTF8(rawID)
	}
	add := func(s string) {
		if !slices.Contains(candidates, s) {
			candidates = append(candidates, s)
		}
	}
	if dec, err := url.QueryUnescape(raw); err == nil && utf8.ValidString(dec) {
		add(dec)
	}
	if utf8.ValidString(raw) {
		add(raw)
	} else {
		add(latin1ToUTF8(raw))
	}
	return id, candidates, true
}

// latin1ToUTF8 reads the bytes of s as ISO-8859-1 and returns them as UTF-8.
func latin1ToUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}
