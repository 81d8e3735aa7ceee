package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Error codes of RFC 9449 (§5, §7.1, §8).
const (
	// CodeInvalidProof is the error of a missing, malformed or failing proof.
	CodeInvalidProof = "invalid_dpop_proof"
	// CodeUseNonce asks the client to retry with the nonce in the DPoP-Nonce header.
	CodeUseNonce = "use_dpop_nonce"
)

// Error is why a proof was refused. Code is CodeInvalidProof or CodeUseNonce.
type Error struct {
	Code        string
	Description string
}

func (e *Error) Error() string { return "dpop: " + e.Code + ": " + e.Description }

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidProof, Description: fmt.Sprintf(format, args...)}
}

// MaxProofBytes bounds the proofs a Verifier looks at.
const MaxProofBytes = 8 << 10

// Verifier checks DPoP proofs (RFC 9449 §4.3). Its zero value is not usable: Replay is required.
type Verifier struct {
	// Algorithms are the accepted JWS algorithms. If nil, SupportedAlgorithms.
	Algorithms []string
	// Window is how far a proof's iat may be from now, either way. If zero, 60 seconds.
	Window time.Duration
	// Replay remembers the proofs seen within the window, so none is accepted twice. Required.
	Replay ReplayCache
	// Nonces issues and checks server nonces (§8, §9). If nil, nonces are never required.
	Nonces *Nonces
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Request describes the HTTP request a proof came with.
type Request struct {
	// Method is the request's method (htm).
	Method string
	// URL is the request's URL as the client addressed it (htu); query and fragment are ignored.
	URL string
	// AccessToken, at a resource server, is the DPoP-bound access token the request carries: the
	// proof must then have ath, its hash (§4.3 point 11).
	AccessToken string
	// JKT, if set, is the thumbprint the proof's key must have: the token's cnf.jkt (§7.1), or the
	// dpop_jkt of an authorization request (§10).
	JKT string
	// RequireNonce makes a proof without a valid current nonce fail with CodeUseNonce.
	RequireNonce bool
}

// Proof is what a valid proof established.
type Proof struct {
	// JKT is the thumbprint of the proof's public key (RFC 7638), to bind tokens to (cnf.jkt).
	JKT string
	// JTI is the proof's unique identifier.
	JTI string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
}

// Verify checks the DPoP header values of a request (there must be exactly one, §4.3 point 1)
// against req. It returns an *Error for a proof that must be refused, or another error if the
// replay cache failed.
func (v *Verifier) Verify(ctx context.Context, header []string, req Request) (*Proof, error) {
	if len(header) != 1 {
		return nil, invalid("the request must carry exactly one DPoP header")
	}
	text := header[0]
	if text == "" {
		return nil, invalid("the DPoP header is empty")
	}
	if len(text) > MaxProofBytes {
		return nil, invalid("the DPoP proof is too large")
	}
	algs := v.Algorithms
	if algs == nil {
		algs = SupportedAlgorithms
	}
	allowed := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		allowed[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSignedCompact(text, allowed) // "none" and HMAC are never in the list
	if err != nil {
		return nil, invalid("the DPoP proof is not a JWS signed with an accepted algorithm")
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("the DPoP proof must have one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, Type) {
		return nil, invalid("the DPoP proof's typ must be dpop+jwt")
	}
	if !slices.Contains(algs, h.Algorithm) {
		return nil, invalid("the DPoP proof's algorithm is not accepted")
	}
	jwk := h.JSONWebKey
	if jwk == nil {
		return nil, invalid("the DPoP proof has no jwk header")
	}
	if !jwk.IsPublic() || !jwk.Valid() {
		return nil, invalid("the DPoP proof's jwk must be a public key")
	}
	if err := keyFitsAlg(jwk.Key, h.Algorithm); err != nil {
		return nil, invalid("%s", err)
	}
	payload, err := jws.Verify(jwk.Key)
	if err != nil {
		return nil, invalid("the DPoP proof's signature is invalid")
	}
	var c proofClaims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	if err := dec.Decode(&c); err != nil {
		return nil, invalid("the DPoP proof's claims are malformed")
	}
	switch {
	case c.JTI == "" || len(c.JTI) > 256:
		return nil, invalid("the DPoP proof needs a jti of at most 256 characters")
	case c.HTM == "" || c.HTU == "" || c.IAT == 0:
		return nil, invalid("the DPoP proof needs htm, htu and iat")
	case c.HTM != req.Method:
		return nil, invalid("the DPoP proof's htm does not match the request method")
	}
	got, err1 := normalizeHTU(c.HTU)
	want, err2 := normalizeHTU(req.URL)
	if err1 != nil || err2 != nil || got != want {
		return nil, invalid("the DPoP proof's htu does not match the request URI")
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	t := now()
	window := v.Window
	if window <= 0 {
		window = time.Minute
	}
	iat := time.Unix(c.IAT, 0)
	if iat.Before(t.Add(-window)) || iat.After(t.Add(window)) {
		return nil, invalid("the DPoP proof's iat is outside the accepted window")
	}
	jkt, err := Thumbprint(jwk)
	if err != nil {
		return nil, invalid("the DPoP proof's jwk has no thumbprint")
	}
	if req.JKT != "" && subtle.ConstantTimeCompare([]byte(jkt), []byte(req.JKT)) != 1 {
		return nil, invalid("the DPoP proof's key is not the key the token is bound to")
	}
	if req.AccessToken != "" {
		if c.ATH == "" || subtle.ConstantTimeCompare([]byte(c.ATH), []byte(TokenHash(req.AccessToken))) != 1 {
			return nil, invalid("the DPoP proof's ath does not match the access token")
		}
	}
	if req.RequireNonce && v.Nonces != nil {
		if c.Nonce == "" {
			return nil, &Error{Code: CodeUseNonce, Description: "a DPoP nonce is required"}
		}
		if !v.Nonces.Valid(c.Nonce, t) {
			return nil, &Error{Code: CodeUseNonce, Description: "the DPoP nonce is invalid or has expired"}
		}
	}
	// Checked last, so that a proof refused for another reason does not use up its jti.
	if v.Replay == nil {
		return nil, errors.New("dpop: Verifier has no replay cache")
	}
	key := sha256.Sum256([]byte(jkt + "." + c.JTI))
	fresh, err := v.Replay.Add(ctx, key, iat.Add(window))
	if err != nil {
		return nil, fmt.Errorf("dpop: replay cache: %w", err)
	}
	if !fresh {
		return nil, invalid("the DPoP proof was used before")
	}
	return &Proof{JKT: jkt, JTI: c.JTI, IssuedAt: iat}, nil
}

// keyFitsAlg refuses keys too weak or of the wrong kind for alg.
func keyFitsAlg(k any, alg string) error {
	switch alg {
	case ES256:
		if pk, ok := k.(*ecdsa.PublicKey); !ok || pk.Curve != elliptic.P256() {
			return errors.New("ES256 needs a P-256 key")
		}
	case EdDSA:
		if _, ok := k.(ed25519.PublicKey); !ok {
			return errors.New("EdDSA needs an Ed25519 key")
		}
	case RS256, PS256:
		if pk, ok := k.(*rsa.PublicKey); !ok || pk.N.BitLen() < 2048 {
			return errors.New("RS256 and PS256 need an RSA key of at least 2048 bits")
		}
	default:
		return fmt.Errorf("algorithm %s is not supported", alg)
	}
	return nil
}

// normalizeHTU returns an http(s) URI without query and fragment, normalized as RFC 9449 §4.3
// asks (RFC 3986 §6.2.2 and §6.2.3): lower-case scheme and host, no default port, an empty path
// as "/", percent-encodings in upper case and decoded only for unreserved characters, dot
// segments removed. The path is compared escaped: a reserved character stays encoded, so a
// proof for /files/a/b does not pass at /files/a%2Fb, which a router may send elsewhere.
func normalizeHTU(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Hostname() == "" || u.User != nil {
		return "", errors.New("dpop: htu must be an absolute http or https URI")
	}
	host := strings.ToLower(u.Hostname())
	if !validHost(host) {
		return "", errors.New("dpop: htu must name a DNS name or an IP address")
	}
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + net.ParseIP(host).String() + "]" // RFC 5952's form
	}
	if port != "" {
		host += ":" + port
	}
	p, err := normalizePercent(u.EscapedPath())
	if err != nil {
		return "", err
	}
	p = removeDotSegments(p)
	if p == "" {
		p = "/"
	}
	return scheme + "://" + host + p, nil
}

// validHost reports whether host (in lower case) is an IPv6 address without zone, or a name or
// IPv4 address of unreserved characters only (RFC 3986 §3.2.2 allows more, which no honest
// client's URL has and whose normal form would be ambiguous).
func validHost(host string) bool {
	if strings.Contains(host, ":") {
		ip := net.ParseIP(host)
		return ip != nil && ip.To4() == nil
	}
	for i := 0; i < len(host); i++ {
		if !unreserved(host[i]) || ('A' <= host[i] && host[i] <= 'Z') {
			return false
		}
	}
	return host != ""
}

// normalizePercent writes the percent-encodings of an escaped path in upper case, and decodes
// those of unreserved characters (RFC 3986 §6.2.2.1, §6.2.2.2); the others stay encoded.
func normalizePercent(p string) (string, error) {
	if !strings.Contains(p, "%") {
		return p, nil
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return "", errors.New("dpop: htu has an invalid percent-encoding")
		}
		c := unhex(p[i+1])<<4 | unhex(p[i+2])
		if unreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteString(strings.ToUpper(p[i+1 : i+3]))
		}
		i += 2
	}
	return b.String(), nil
}

// unreserved reports whether c is an unreserved character (RFC 3986 §2.3).
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// removeDotSegments is the algorithm of RFC 3986 §5.2.4, on an escaped path whose unreserved
// percent-encodings are decoded (so "%2E%2E" is ".." by then).
func removeDotSegments(in string) string {
	var out []string // segments of the output, each with its leading "/"
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "/..":
			in = "/"
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case in == "." || in == "..":
			in = ""
		default:
			// The first segment, with its leading "/" if any, up to the next "/".
			n := strings.IndexByte(in[1:], '/')
			if n < 0 {
				out, in = append(out, in), ""
			} else {
				out, in = append(out, in[:n+1]), in[n+1:]
			}
		}
	}
	return strings.Join(out, "")
}
