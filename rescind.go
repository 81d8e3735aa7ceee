// Package rescind holds the domain of the Rescind OAuth 2.0 authorization server: clients,
// users, grants with their refresh tokens and authorization codes, revocations, status lists,
// keys and the audit log, and the Store interface that every storage backend implements.
//
// The design in brief: a grant (one client, one subject, some scopes) is the unit of revocation.
// Access tokens are sealed (or signed) and never stored, so issuing and checking one costs no
// database I/O; refresh tokens and codes are stored as hashes. What is stored instead of access
// tokens is revocation state: revoked tokens, revoked grants, status list entries, cut-offs that
// revoke every token of a client issued before a moment, and retired keys. Each revocation
// record lives only until the last token it covers has expired (package internal/revocation
// states the invariant), so stored state grows with revoked-and-unexpired tokens, never with
// issued ones.
//
// A person's sign-in on a browser is a Session (sessions.go): ending one is a revocation too,
// recorded until the session's own expiry.
//
// Backends live in store/sqlite (the embedded default) and store/postgres (several instances);
// store/storetest is the conformance suite each of them passes unchanged.
package rescind

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Sentinel errors returned by a Store. Callers test them with errors.Is.
var (
	// ErrNotFound means the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a record with the same identifier already exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrNewerSchema means the database was migrated by a newer release than the one opening it.
	ErrNewerSchema = errors.New("the database was migrated by a newer release of rescind")
)

// Grant types a client may be registered for (RFC 6749 §4).
const (
	GrantClientCredentials = "client_credentials"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
)

// Client authentication methods at the token endpoint (RFC 8414 §2, RFC 7591 §2).
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// MaxAccessTokenTTL is the longest lifetime any access token can have, whatever the server and
// client configuration: the server clamps every lifetime to it. Records that must outlive
// tokens issued without any write (client-wide cut-offs) are sized from it.
const MaxAccessTokenTTL = 30 * 24 * time.Hour

// Client is a registered OAuth 2.0 client. A confidential client has a SecretHash; a public
// client (Public true) has none and cannot use the client_credentials grant.
type Client struct {
	// ID is the client_id, random and never reused.
	ID string
	// Name is the human-readable client_name.
	Name string
	// SecretHash is the PHC-formatted argon2id hash of the client secret; empty for public clients.
	SecretHash string
	// PreviousSecretHash is the hash of the secret replaced by the last rotation; it is accepted
	// until PreviousSecretExpiresAt (the end of the rotation's overlap), then never.
	PreviousSecretHash      string
	PreviousSecretExpiresAt time.Time
	// Public marks a client without a secret (token_endpoint_auth_method "none").
	Public bool
	// GrantTypes lists the grant types the client may use.
	GrantTypes []string
	// Scopes lists the scopes the client may be granted; a token request without a scope gets all of them.
	Scopes []string
	// RedirectURIs lists the registered redirection endpoints (RFC 6749 §3.1.2).
	RedirectURIs []string
	// TokenTTL is the lifetime of the client's access tokens; zero means the server default.
	// Changing it changes nothing already issued or revoked.
	TokenTTL time.Duration
	// AllowPlainPKCE lets a confidential client use the "plain" PKCE method; otherwise S256 is
	// required. A public client never may (see MayUsePlainPKCE).
	AllowPlainPKCE bool
	// TokenFormat is TokenFormatOpaque (the default, also when empty) or TokenFormatJWT.
	TokenFormat string
	// CreatedAt is when the client was registered.
	CreatedAt time.Time
	// ResourceServer marks a client that may introspect other clients' access tokens and
	// receive revocation events for them (RFC 7662 §4): those whose audience includes one of
	// Resources, or every access token when Resources is empty. See MayIntrospect.
	ResourceServer bool
	// Resources are the resource identifiers (absolute URIs, RFC 8707) a resource-server
	// client serves.
	Resources []string
	// AllowInsecureRedirect lets the client register plain-http redirect URIs on hosts other
	// than loopback, for development (see package internal/redirect).
	AllowInsecureRedirect bool
	// FirstParty marks a client an operator registered as the server's own: a public client
	// then skips the consent page for scopes already granted, as a confidential client does.
	// Any other public client gets the consent page every time (RFC 8252 §8.6, RFC 9700 §2.1:
	// anyone can claim a public client's id).
	FirstParty bool
	// RequireDPoP makes every token request of the client carry a DPoP proof (RFC 9449 §5), so
	// that all its access tokens are bound to a key it holds.
	RequireDPoP bool
	// IDTokenAlg is the JWS algorithm of the client's ID tokens and logout tokens (OpenID
	// Connect Dynamic Client Registration 1.0 §2, id_token_signed_response_alg): AlgRS256 (also
	// when empty, the default), AlgES256 or AlgEdDSA.
	IDTokenAlg string
	// PostLogoutRedirectURIs are where the end-session endpoint may send the browser after a
	// logout the client asked for (OpenID Connect RP-Initiated Logout 1.0 §3.1), matched exactly.
	PostLogoutRedirectURIs []string
	// BackchannelLogoutURI is where the client receives logout tokens when a session in which it
	// was given a code ends (OpenID Connect Back-Channel Logout 1.0 §2.2); empty: it receives
	// none.
	BackchannelLogoutURI string
	// BackchannelLogoutSessionRequired says the client needs the sid claim in its logout tokens
	// (§2.2). Rescind's logout tokens always carry it, and sub too.
	BackchannelLogoutSessionRequired bool
	// AllowedResources, if not empty, are the only resources (RFC 8707) the client may ask
	// tokens for; empty means any. Distinct from Resources, what a resource server serves.
	AllowedResources []string
	// ScopeLimit, if not nil, bounds the scopes of a self-registered client: an operator's
	// narrowing (client update --scope, or the Scopes of the initial access token it registered
	// with), kept apart from the Scopes the client asserts itself (RFC 7592, its metadata
	// document), which never change it; empty allows no scope. The client may be granted only
	// scopes in both. By client credentials, where no person consents, a self-registered client
	// gets a scope only if its ScopeLimit names it: nil allows none there.
	ScopeLimit []string
	// Registration says how the client was registered: RegistrationAdmin (by an operator),
	// RegistrationDynamic (RFC 7591) or RegistrationMetadataDocument (a Client ID Metadata
	// Document, whose URL is the ID).
	Registration string
	// RegistrationTokenHash is the hex SHA-256 of the registration access token (RFC 7592 §1)
	// of a dynamically registered client; empty for others.
	RegistrationTokenHash string
}

// How a client was registered (Client.Registration).
const (
	RegistrationAdmin            = ""
	RegistrationDynamic          = "dynamic"
	RegistrationMetadataDocument = "metadata_document"
)

// SelfRegistered reports whether the client registered itself (RFC 7591, or a Client ID
// Metadata Document): its name and metadata are its own claims, checked by no operator.
func (c Client) SelfRegistered() bool { return c.Registration != RegistrationAdmin }

// MayRequestResource reports whether the client may ask for tokens for resource (RFC 8707):
// any resource when it has no AllowedResources, else one of them.
func (c Client) MayRequestResource(resource string) bool {
	return len(c.AllowedResources) == 0 || slices.Contains(c.AllowedResources, resource)
}

// JWS algorithms of ID tokens and logout tokens (RFC 7518 §3.1, RFC 8037 §3.1).
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// IDTokenAlgorithm returns the algorithm of the client's ID tokens: IDTokenAlg, or RS256 when it
// is not set (OpenID Connect Dynamic Client Registration 1.0 §2).
func (c Client) IDTokenAlgorithm() string {
	if c.IDTokenAlg == "" {
		return AlgRS256
	}
	return c.IDTokenAlg
}

// SkipsConsent reports whether the client may be given a code without asking the person again
// for scopes they already granted it: a confidential client, or a public one registered as
// first-party.
func (c Client) SkipsConsent() bool { return !c.Public || c.FirstParty }

// ClientUpdate is a change to a client's registration (Store.UpdateClient): each field that is
// not nil replaces the stored value; the others are left as stored.
type ClientUpdate struct {
	Name         *string
	Scopes       *[]string
	RedirectURIs *[]string
	TokenTTL     *time.Duration
	// FirstParty, if not nil, replaces Client.FirstParty.
	FirstParty *bool
	// RequireDPoP, if not nil, replaces Client.RequireDPoP.
	RequireDPoP *bool
	// The OpenID Connect fields, each replacing the client's if not nil.
	IDTokenAlg                       *string
	PostLogoutRedirectURIs           *[]string
	BackchannelLogoutURI             *string
	BackchannelLogoutSessionRequired *bool
	// GrantTypes, TokenFormat, AllowInsecureRedirect and AllowedResources, if not nil, replace
	// the Client's fields of those names (a self-registered client's own update, RFC 7592, and
	// its metadata document's changes; allowed resources, RFC 8707).
	GrantTypes            *[]string
	TokenFormat           *string
	AllowInsecureRedirect *bool
	AllowedResources      *[]string
	// ScopeLimit, if not nil, replaces Client.ScopeLimit; a pointer to nil removes the limit.
	ScopeLimit *[]string
}

// AllowsGrant reports whether the client is registered for the grant type gt.
func (c Client) AllowsGrant(gt string) bool {
	for _, g := range c.GrantTypes {
		if g == gt {
			return true
		}
	}
	return false
}

// MayUsePlainPKCE reports whether the client may use the "plain" PKCE method (RFC 7636 §4.2):
// only a confidential client allowed it. A plain verifier is the challenge, which travels in the
// authorization request's URL: for a public client, which authenticates with its client_id
// alone, whoever saw that URL and the code could redeem the code or, presenting it again, burn
// the person's grant as a replay.
func (c Client) MayUsePlainPKCE() bool { return c.AllowPlainPKCE && !c.Public }

// ServesAudience reports whether c is a resource server for a token whose audience is aud: it
// is registered as a resource server and either has no resources (it serves every audience) or
// has one that aud includes.
func (c Client) ServesAudience(aud []string) bool {
	if !c.ResourceServer {
		return false
	}
	if len(c.Resources) == 0 {
		return true
	}
	for _, a := range aud {
		if slices.Contains(c.Resources, a) {
			return true
		}
	}
	return false
}

// MayIntrospect reports whether caller may learn about an access token issued to clientID
// whose audience is aud: its own client may, and so may a resource server for that audience.
// Everyone else must learn nothing, not even that the token exists (DESIGN.md, "Who may learn
// what"). A refresh token is visible to its own client alone, which is caller.ID == clientID.
func MayIntrospect(caller Client, clientID string, aud []string) bool {
	return caller.ID == clientID || caller.ServesAudience(aud)
}

// Access token formats.
const (
	TokenFormatOpaque = "opaque"
	TokenFormatJWT    = "jwt"
)

// RevocationKind says what a Revocation covers.
type RevocationKind string

const (
	// RevokeToken revokes the single token whose id (jti) is Key.
	RevokeToken RevocationKind = "token"
	// RevokeGrant revokes every token of the grant whose id is Key (the grant is revoked).
	RevokeGrant RevocationKind = "grant"
	// RevokeStatus flips one Token Status List entry (StatusList, StatusIdx): the entry of an
	// access token of a revoked grant. It revokes nothing by itself (the grant record does).
	RevokeStatus RevocationKind = "status"
	// RevokeClient revokes every token of the client whose id is Key that was issued at or
	// before RevokedAt. It is written when a client is deleted or bulk-revoked. For a deleted
	// client RevokedAt equals ExpiresAt: an instance that has not yet learnt of the deletion and
	// issues one more token issues a dead one.
	RevokeClient RevocationKind = "client"
)

// Revocation is one durable revocation record. It is kept until ExpiresAt, the moment the last
// token it covers expires; after that the token is dead by its own expiry and the record can go.
type Revocation struct {
	// Seq is assigned by the store when the record is first written, in commit order; it lets
	// a reader fetch only what is new. Ignored on input.
	Seq int64
	// Kind says what Key names.
	Kind RevocationKind
	// Key is the token id (RevokeToken) or client id (RevokeClient).
	Key string
	// ClientID is the client the revoked token or tokens were issued to.
	ClientID string
	// RevokedAt is when the revocation took effect.
	RevokedAt time.Time
	// ExpiresAt is when the record may be deleted.
	ExpiresAt time.Time
	// Subject is the token's subject, for push events; may be empty.
	Subject string
	// StatusList and StatusIdx name the revoked token's Token Status List entry; StatusList is
	// empty (and StatusIdx -1) when there is none.
	StatusList string
	StatusIdx  int64
	// Audience is the audience of the tokens the record covers, for deciding who may receive
	// it as an event (MayReceive). Empty means the default audience, the issuer: what every
	// record written before audiences were recorded, and every grant's tokens, have.
	Audience []string
	// Actor and Reason, if Actor is set, make the store write an audit entry for the record in
	// the same transaction. They are not part of the record.
	Actor, Reason string
}

// RevocationEntry is the part of a stored revocation record that decides which tokens it covers:
// what an instance holds in memory. Store.ScanRevocations passes one to its callback for each
// record, reusing it and its byte slices for the next, so that loading millions of records
// allocates nothing per record.
type RevocationEntry struct {
	Seq  int64
	Kind RevocationKind
	// Key is the record's Key, valid only during the callback.
	Key []byte
	// RevokedAt and ExpiresAt are Unix nanoseconds.
	RevokedAt, ExpiresAt int64
	// StatusList is the record's StatusList (empty if none), valid only during the callback;
	// StatusIdx its StatusIdx.
	StatusList []byte
	StatusIdx  int64
}

// ParseRevocationKind returns the RevocationKind named b, without allocating for the kinds this
// package defines.
func ParseRevocationKind(b []byte) RevocationKind {
	switch string(b) {
	case string(RevokeToken):
		return RevokeToken
	case string(RevokeGrant):
		return RevokeGrant
	case string(RevokeStatus):
		return RevokeStatus
	case string(RevokeClient):
		return RevokeClient
	case string(RevokeKey):
		return RevokeKey
	case string(RevokeSession):
		return RevokeSession
	}
	return RevocationKind(b)
}

// MayReceive reports whether subscriber may receive the revocation record r as an event: the
// rule of MayIntrospect applied to the tokens r covers, with issuer standing for a record's
// empty Audience. A client-wide record (RevokeClient) covers tokens of any audience the client
// was given, so it goes to every resource server as well as to the client itself; a key
// retirement (RevokeKey) goes to every subscriber; an ended session (RevokeSession) to none.
func MayReceive(subscriber Client, r Revocation, issuer string) bool {
	if r.Kind == RevokeSession {
		return false // a person's sign-in is no token: nothing for resource servers
	}
	if subscriber.ID == r.ClientID {
		return true
	}
	if r.Kind == RevokeClient {
		return subscriber.ResourceServer
	}
	if r.Kind == RevokeKey {
		return true // a retired key concerns every verifier, and names nothing but the key
	}
	aud := r.Audience
	if len(aud) == 0 {
		aud = []string{issuer}
	}
	return subscriber.ServesAudience(aud)
}

// StatusList is a Token Status List that an instance allocated: its id is recorded before any
// token refers to it, so every instance can tell a real list from a made-up id.
type StatusList struct {
	// ID is the list id, the last segment of its URI.
	ID string
	// CreatedAt is when an instance started allocating from it.
	CreatedAt time.Time
	// ExpiresAt is when every token that can refer to it has expired; the record may go then.
	ExpiresAt time.Time
}

// User is a person who can log in and grant clients access.
type User struct {
	// ID is the user's stable identifier, the "sub" of their tokens.
	ID string
	// Username is unique.
	Username string
	// PasswordHash is the PHC-formatted argon2id hash of the password.
	PasswordHash string
	// CreatedAt is when the user was created.
	CreatedAt time.Time
	// Epoch counts the changes that ended every session of the user (a new password, signing
	// out everywhere): a session is created only under the epoch its sign-in read before
	// checking the password (Session.UserEpoch), so a sign-in that raced such a change does not
	// outlive it.
	Epoch int64
	// DeviceEpoch counts the times every browser the person signed in on was forgotten
	// (SessionFilter.ForgetDevices: signing out everywhere, an operator's user logout): the
	// login page's device cookies are bound to it. A new password does not move it, so that
	// the person is not locked out of their own browsers while someone else's guesses keep the
	// username's rate limit empty.
	DeviceEpoch int64
	// Name is the person's full name (OpenID Connect's name claim, scope profile); may be empty.
	Name string
	// Email is the person's e-mail address (the email claim, scope email); may be empty. It is
	// not verified: email_verified is false.
	Email string
}

// Grant is a person's consent for one client to act with a set of scopes: the unit of
// revocation. Every token issued through the authorization code flow belongs to a grant;
// revoking the grant kills them all.
type Grant struct {
	ID       string
	ClientID string
	UserID   string
	// Scopes are the scopes the person consented to.
	Scopes []string
	// Audience lists the audiences of the access tokens the grant may issue: the union of the
	// resources (RFC 8707) of every consent, with the issuer standing for a consent that named
	// none. Empty in a grant recorded before audiences were: the issuer's alone. A revoked
	// grant's record carries it, so that resource servers of those audiences learn of it.
	// Issuance adds to it too (RedeemCode, RotateRefreshToken): that is no consent.
	Audience []string
	// ConsentedAudience lists the audiences the person consented to: the union of the
	// resources of every consent (SaveGrant's Audience), without what issuance added to
	// Audience. The authorization endpoint skips consent only within it. Empty in a grant
	// recorded before it was: no consent known, the person is asked again.
	ConsentedAudience []string
	// CreatedAt is when access was first granted; LastUsedAt when a token was last issued.
	CreatedAt, LastUsedAt time.Time
	// RevokedAt is when the grant was revoked; zero while it is active.
	RevokedAt time.Time
	// TokensExpireAt is the latest expiry of the access tokens issued under the grant (zero if
	// none): the store raises it in the transaction that redeems a code or rotates a refresh
	// token, which every access token of the grant follows. A revoked grant's record lives until
	// then.
	TokensExpireAt time.Time
	// SessionID is the session (Session.ID) in which the person last consented to the grant;
	// empty for a grant made before sessions were recorded. Ending the session does not revoke
	// the grant.
	SessionID string
}

// GrantFilter selects grants: every field that is set must match.
type GrantFilter struct {
	GrantID, ClientID, UserID string
}

// IsZero reports whether the filter selects everything.
func (f GrantFilter) IsZero() bool { return f == GrantFilter{} }

// RefreshToken is a stored refresh token: its hash, never the token.
type RefreshToken struct {
	// Hash is the hex SHA-256 of the token.
	Hash     string
	GrantID  string
	ClientID string
	// Scope is the space-separated scope of the tokens it yields.
	Scope string
	// Resources are the resources (RFC 8707) its access tokens may be for: a refresh may ask
	// for a subset. Empty means none were named: the tokens are for the issuer.
	Resources []string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt is when it was exchanged (rotated); zero while unused.
	UsedAt time.Time
	// SessionID is the session (Session.ID) in which the code that started the token's chain was
	// issued, carried through every rotation (OpenID Connect's sid, kept by refreshed ID tokens,
	// §12.2); empty if none.
	SessionID string
	// AuthTime is when the person authenticated for that code (the auth_time of refreshed ID
	// tokens); zero if unknown.
	AuthTime time.Time
	// JKT is the thumbprint of the DPoP key the token is bound to (RFC 9449 §5: a public
	// client's refresh tokens are); empty if unbound. Using it needs a proof made with that key.
	JKT string
}

// AuthCode is a stored authorization code (RFC 6749 §4.1.2): its hash and what it is bound to.
type AuthCode struct {
	// Hash is the hex SHA-256 of the code.
	Hash     string
	ClientID string
	UserID   string
	GrantID  string
	// RedirectURI is the redirection URI the code was sent to; RedirectURIGiven says whether
	// the authorization request named it (RFC 6749 §4.1.3 then requires it at the token endpoint).
	RedirectURI      string
	RedirectURIGiven bool
	Scope            string
	// Resources are the resources (RFC 8707) the authorization request named: the token
	// request may ask for a subset. Empty means none: the tokens are for the issuer.
	Resources []string
	// Challenge and ChallengeMethod are the PKCE code challenge (RFC 7636 §4.3).
	Challenge, ChallengeMethod string
	// DPoPJKT is the dpop_jkt of the authorization request (RFC 9449 §10): the thumbprint of
	// the key whose proof must come with the code's redemption; empty if none was given.
	DPoPJKT              string
	CreatedAt, ExpiresAt time.Time
	// UsedAt is when the code was redeemed; zero before.
	UsedAt time.Time
	// SessionID is the session (Session.ID) in which the code was issued.
	SessionID string
	// Nonce is the nonce of the authorization request (OpenID Connect Core 1.0 §3.1.2.1), echoed
	// in the ID token; empty if none was sent.
	Nonce string
	// AuthTime is when the person last authenticated in the session (the ID token's auth_time).
	AuthTime time.Time
}

// RegistrationToken is an initial access token (RFC 7591 §3): with `--registration token`,
// dynamic client registration requires one. It is stored as a hash, never as the token.
type RegistrationToken struct {
	// ID names the token to operators (list, delete); it is not the token.
	ID string
	// Hash is the hex SHA-256 of the token.
	Hash string
	// CreatedAt is when it was made; ExpiresAt when it stops working.
	CreatedAt, ExpiresAt time.Time
	// Scopes, if not nil, are the scopes the clients registered with the token may hold
	// (`registration-token create --scope`): each such client gets them as its ScopeLimit, the
	// operator's explicit allowance. Nil: the clients it registers get no ScopeLimit, so no
	// scope by client credentials, where no person consents.
	Scopes []string
	// AllowedResources, if not empty, are the resources (RFC 8707) the clients registered with
	// the token may ask tokens for (`registration-token create --allowed-resource`): each such
	// client gets them as its AllowedResources. Empty: any, as for a client an operator makes.
	AllowedResources []string
}

// AuditEntry records one revocation: who, what, why, when. It never holds a token.
type AuditEntry struct {
	ID int64
	At time.Time
	// Actor is who acted, e.g. "client:ID", "user:alice", "admin".
	Actor string
	// Action is what happened, e.g. "revoke_token", "revoke_grant", "delete_client".
	Action string
	// Target names what was acted on: a token id, grant id, client id or user id.
	Target string
	// Reason says why, e.g. "revocation endpoint", "refresh token reuse".
	Reason string
}

// Errors of the stateful grant flows.
var (
	// ErrReused means a single-use credential (an authorization code, a rotated refresh token)
	// was presented again: a sign of theft (RFC 6749 §4.1.2, RFC 9700 §4.14.2).
	ErrReused = errors.New("credential reused")
)

// EventKind says what an Event reports.
type EventKind int

const (
	// EventRevoked carries revocations committed by some instance.
	EventRevoked EventKind = iota + 1
	// EventClientChanged says the client ClientID changed or was deleted.
	EventClientChanged
	// EventKeysChanged says keys were added.
	EventKeysChanged
	// EventResync says events may have been missed (the watch connection was re-established):
	// reload whatever is cached.
	EventResync
)

// Event is a change to shared state, delivered by a Watcher to every instance.
type Event struct {
	Kind EventKind
	// Revocations are set for EventRevoked. If nil, reload revocations from the store instead.
	Revocations []Revocation
	// ClientID is set for EventClientChanged.
	ClientID string
}

// Watcher is implemented by stores that several server instances share: it delivers every
// change committed by any instance, so each can update its caches at once. Delivery is best
// effort (a dropped connection loses events; EventResync follows its re-establishment), so
// instances also poll RevocationsSince.
type Watcher interface {
	// Watch calls fn for each event until ctx ends. fn is called from one goroutine.
	Watch(ctx context.Context, fn func(Event)) error
}

// Key is a server key (for example, the key that seals opaque access tokens), stored encrypted
// under the secrets key so that a copy of the database alone does not reveal it.
type Key struct {
	// ID is the key id embedded in every token the key sealed or signed.
	ID string
	// Use says what the key is for, for example "seal".
	Use string
	// Algorithm names the algorithm, for example "XC20P" (XChaCha20-Poly1305).
	Algorithm string
	// Sealed is the key material encrypted under the secrets key.
	Sealed []byte
	// CreatedAt is when the key was generated (and, for a signing key, published). It orders
	// the keys of a use: see ActiveKey.
	CreatedAt time.Time
	// ActivatesAt is when the key starts sealing or signing (a stored fact, so every instance
	// and a restarted server agree); a zero value given to CreateKey means CreatedAt.
	ActivatesAt time.Time
	// RetiredAt is when the key was retired (RetireKey); zero while it is not. A retired key
	// never seals, signs or verifies again.
	RetiredAt time.Time
}

// Store is the storage interface. Every backend passes the conformance suite in
// store/storetest. All methods are safe for concurrent use.
type Store interface {
	// CreateClient stores a new client. Returns ErrAlreadyExists if its ID is taken.
	CreateClient(ctx context.Context, c Client) error
	// GetClient returns the client with the given ID. Returns ErrNotFound if there is none.
	GetClient(ctx context.Context, id string) (Client, error)
	// ListClients returns every client, ordered by creation time then ID.
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient applies u to the client id in one statement and, on a shared store, tells
	// the other instances. Only the fields u sets are written; every other column keeps its
	// stored value, so a concurrent change of other fields (on this instance or another, a
	// secret rotation included) is never undone. It returns the client as updated. Returns
	// ErrNotFound if there is no such client.
	UpdateClient(ctx context.Context, id string, u ClientUpdate) (Client, error)
	// RotateClientSecret gives the client id the secret whose hash is hash, in one statement
	// that reads the secret it replaces where it writes (so a concurrent change cannot bring the
	// replaced secret back): the replaced secret becomes PreviousSecretHash until previousUntil,
	// or is dropped at once if previousUntil is zero (so is the previous secret of an earlier
	// rotation, either way). On a shared store it tells the other instances. It returns the
	// client as updated. Returns ErrNotFound if there is no such client.
	RotateClientSecret(ctx context.Context, id, hash string, previousUntil time.Time) (Client, error)
	// DeleteClient deletes the client and writes rev (which should revoke all its tokens) in the
	// same transaction, together with revoking the client's grants at now as RevokeGrants does,
	// so no crash can leave a deleted client's tokens alive. If rev.Actor is set, one audit entry
	// dated now records the deletion. It returns every record written (the grants' and rev).
	// Returns ErrNotFound if there is no such client; nothing is written then.
	DeleteClient(ctx context.Context, id string, now time.Time, rev Revocation) ([]Revocation, error)

	// Revoke durably writes the revocations in one transaction: when it returns nil they survive
	// a crash. A record whose (Kind, Key) already exists is merged with the new one: the later
	// RevokedAt and the later ExpiresAt are kept, and if either moved the record gets a new Seq.
	Revoke(ctx context.Context, revs []Revocation) error
	// RevocationsSince returns up to limit records with Seq greater than afterSeq that have not
	// expired at now, in Seq order.
	RevocationsSince(ctx context.Context, afterSeq int64, now time.Time, limit int) ([]Revocation, error)
	// LastRevocationSeq returns the highest Seq written so far (0 if none).
	LastRevocationSeq(ctx context.Context) (int64, error)
	// DeleteExpiredRevocations deletes records whose ExpiresAt is before now and returns how many.
	DeleteExpiredRevocations(ctx context.Context, now time.Time) (int64, error)
	// CountRevocations returns the number of stored revocation records.
	CountRevocations(ctx context.Context) (int64, error)
	// ScanRevocations calls fn, in Seq order, with each record whose Seq is greater than
	// afterSeq and at most uptoSeq and that has not expired at now, as a RevocationEntry (what
	// decides which tokens the record covers; its byte slices are valid only during that call).
	// It stops at fn's first error and returns it. Calls on disjoint ranges may run at once, so
	// that an instance loads a large state in parallel.
	ScanRevocations(ctx context.Context, afterSeq, uptoSeq int64, now time.Time, fn func(*RevocationEntry) error) error

	// CreateUser stores a new user. Returns ErrAlreadyExists if the ID or username is taken.
	CreateUser(ctx context.Context, u User) error
	// GetUser returns the user with the given ID. Returns ErrNotFound if there is none.
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByUsername returns the user with the given username. Returns ErrNotFound if none.
	GetUserByUsername(ctx context.Context, username string) (User, error)
	// ListUsers returns every user, ordered by creation time then ID.
	ListUsers(ctx context.Context) ([]User, error)
	// DeleteUser deletes the user and, in the same transaction, revokes all their grants as
	// RevokeGrants does (rev is the template of each grant's record) and ends all their
	// sessions as EndSessions does (with end). It returns the records written (RevokeSession
	// records included) and how many refresh tokens were deleted. Returns ErrNotFound if there is
	// no such user.
	DeleteUser(ctx context.Context, id string, rev Revocation, end SessionEnd) ([]Revocation, int64, error)
	// SetPassword replaces the user's password hash and, in the same transaction, moves their
	// Epoch, ends all their sessions as EndSessions does (with end) and, with revokeGrants,
	// revokes all their grants as RevokeGrants does (rev is the template of every record). If
	// rev.Actor is set, an audit entry "set_password" records it too. It returns the records
	// written and how many refresh tokens were deleted. Returns ErrNotFound if there is no such
	// user.
	SetPassword(ctx context.Context, id, passwordHash string, revokeGrants bool, rev Revocation, end SessionEnd) ([]Revocation, int64, error)
	// SetUserProfile replaces the user's Name and Email. Returns ErrNotFound if there is no such
	// user.
	SetUserProfile(ctx context.Context, id, name, email string) error

	// CreateSession stores a new session of s.UserID. Returns ErrNotFound if there is no such
	// user, ErrUserChanged if the user's Epoch is no longer s.UserEpoch (their sessions were
	// ended meanwhile), ErrAlreadyExists if the ID or hash is taken.
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns the session whose cookie secret hashes to hash, expired or not.
	// Returns ErrNotFound if there is none (never created, ended, or expired and purged).
	GetSession(ctx context.Context, hash string) (Session, error)
	// GetSessionByID returns the session with the given ID, expired or not. Returns ErrNotFound
	// if there is none (never created, ended, or expired and purged).
	GetSessionByID(ctx context.Context, id string) (Session, error)
	// ReauthenticateSession records that the person of session id authenticated again at
	// authTime (OpenID Connect's prompt=login, max_age): its AuthTime and LastSeenAt become
	// authTime, its IdleExpiresAt idleExpiresAt, and its cookie secret's hash becomes newHash
	// (the browser gets a new secret; a copy of the old one no longer finds it). The session
	// keeps its ID and absolute expiry. Returns ErrNotFound, and changes nothing, unless the
	// session exists with the hash oldHash (it ended meanwhile, or the secret changed).
	ReauthenticateSession(ctx context.Context, id, oldHash, newHash string, authTime, idleExpiresAt time.Time) error
	// ListSessions returns the user's sessions still active at now (Session.Active), oldest
	// first.
	ListSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
	// TouchSession records a use of the session id: LastSeenAt and IdleExpiresAt become
	// lastSeen and idleExpiresAt unless they are already later. Returns ErrNotFound if there is
	// no such session (ended, or expired and purged): the caller must not extend a copy of it.
	TouchSession(ctx context.Context, id string, lastSeen, idleExpiresAt time.Time) error
	// EndSessions ends the sessions matching f (f.UserID is required) in one transaction:
	// each is deleted and a RevokeSession record (a copy of rev with Kind, Key, Subject and
	// ExpiresAt set: the record lives until the earlier of the session's absolute expiry and
	// its idle expiry as stored when it ends, whoever ends it) is
	// written, with an audit entry if rev.Actor is set. A filter without ID also moves the
	// user's Epoch (and with ForgetDevices their DeviceEpoch), unless it has SignedInBy, which
	// moves nothing and writes its audit entry only if a session ended. In the same transaction,
	// the unused codes issued in the sessions are deleted, and end is carried out: the messages
	// its Notices make are enqueued, and with RevokeGrants the grants of the sessions' clients
	// are revoked as RevokeGrants does. It returns the records written (sessions', then
	// grants'), none if nothing matched.
	EndSessions(ctx context.Context, f SessionFilter, rev Revocation, end SessionEnd) ([]Revocation, error)
	// ExpireSessions ends up to limit sessions that expired (idle or absolutely) before now, in
	// one transaction, as EndSessions does with end (rev's RevokedAt is now, its Actor
	// "janitor"), but writes no RevokeSession record: an expired session is refused by its
	// expiry everywhere. It returns how many sessions it ended and the records written (those
	// of the grants end revoked). Call it again while it returns limit.
	ExpireSessions(ctx context.Context, now time.Time, limit int, end SessionEnd) (int, []Revocation, error)

	// SaveGrant records consent: if an active grant exists for g.ClientID and g.UserID, its
	// scopes become the union with g.Scopes, its audience the union with g.Audience, its
	// SessionID becomes g.SessionID, and it is
	// returned; otherwise g is stored. Either way g.Audience is consented: the grant's
	// ConsentedAudience becomes its union with g.Audience (g.ConsentedAudience is ignored).
	SaveGrant(ctx context.Context, g Grant) (Grant, error)
	// GetGrant returns the grant with the given ID, active or revoked. Returns ErrNotFound.
	GetGrant(ctx context.Context, id string) (Grant, error)
	// ListGrants returns the active grants matching f, oldest first.
	ListGrants(ctx context.Context, f GrantFilter) ([]Grant, error)
	// TouchGrant sets the grant's LastUsedAt.
	TouchGrant(ctx context.Context, id string, at time.Time) error
	// RevokeGrants revokes the active grants matching f (which must not be zero) in one
	// transaction: each is marked revoked, its refresh tokens and codes are deleted, and a
	// RevokeGrant record (a copy of rev with Key and ClientID set, and the grant's Audience) is
	// written, with a RevokeStatus record for each status list entry recorded for the grant
	// (with the same audience). A grant record's
	// ExpiresAt is the grant's TokensExpireAt (at least rev.RevokedAt), never rev.ExpiresAt: it
	// lives as long as the tokens it covers, whoever revokes and whatever is configured. A grant
	// matching f that is already revoked, whose tokens may still be alive (TokensExpireAt not
	// before rev.RevokedAt) and whose record is missing or ends earlier, gets its record written
	// again (RevokedAt: when it was revoked), so revoking again extends and never shortens. It
	// returns the records written and how many refresh tokens were deleted.
	RevokeGrants(ctx context.Context, f GrantFilter, rev Revocation) ([]Revocation, int64, error)

	// CreateRefreshToken stores a refresh token (its hash).
	CreateRefreshToken(ctx context.Context, rt RefreshToken) error
	// GetRefreshToken returns the refresh token with the given hash, used or not. Returns
	// ErrNotFound if there is none (never issued, expired and purged, or its grant revoked).
	GetRefreshToken(ctx context.Context, hash string) (RefreshToken, error)
	// RotateRefreshToken atomically marks the token with hash oldHash used, stores next and
	// raises its grant's TokensExpireAt to tokensExpireAt (the expiry of the access token about
	// to be issued with next). In the same transaction the values of audience the grant's
	// Audience lacks are added to it (nil adds nothing): the caller passes the audience of the
	// access token when the grant does not record it yet, so that every token's audience is
	// within its grant's and the grant's revocation reaches the resource servers of each. It
	// returns the old token. If the old token was already used it returns it with ErrReused and
	// writes nothing; if there is none, it has expired at now, or its grant is revoked,
	// ErrNotFound. Of two concurrent rotations of one token exactly one succeeds; the other sees
	// ErrReused.
	RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, now, tokensExpireAt time.Time, audience []string) (RefreshToken, error)

	// CreateCode stores an authorization code (its hash). A code of a session (c.SessionID
	// set) is stored only while that session exists, and records c.ClientID and c.GrantID
	// among the session's clients (EndedSession.Clients), in the same transaction: a session
	// ended concurrently either finds the client, or makes CreateCode return ErrNotFound.
	CreateCode(ctx context.Context, c AuthCode) error
	// GetCode returns the code with the given hash, used or not, expired or not, without
	// changing it. Returns ErrNotFound if there is none (never issued, purged, or its grant
	// revoked).
	GetCode(ctx context.Context, hash string) (AuthCode, error)
	// RedeemCode atomically marks the code used, raises its grant's TokensExpireAt to
	// tokensExpireAt (the expiry of the access token about to be issued), adds to its grant's
	// Audience the values of audience it lacks, as RotateRefreshToken does, and returns the code.
	// A code already used is returned with ErrReused and nothing is written; a code that does
	// not exist, has expired at now, or whose grant is revoked gives ErrNotFound. Of two
	// concurrent redemptions exactly one succeeds; the other sees ErrReused.
	RedeemCode(ctx context.Context, hash string, now, tokensExpireAt time.Time, audience []string) (AuthCode, error)

	// RecordGrantTokenStatus remembers the status list entry of an access token issued under a
	// grant, until exp, so that RevokeGrants can flip it. RevokeGrants writes a RevokeStatus
	// record for each unexpired entry of each grant it revokes. The entry is recorded only while
	// the grant is active, atomically with respect to RevokeGrants (on PostgreSQL under the
	// grant's row lock): if the grant is revoked or missing, nothing is written and ErrNotFound
	// is returned, and the token must not be issued. So every entry recorded is flipped by the
	// grant's revocation, whichever commits first.
	RecordGrantTokenStatus(ctx context.Context, grantID, list string, idx int64, exp time.Time) error

	// CreateStatusList records a status list an instance starts allocating from. Returns
	// ErrAlreadyExists if its ID is taken.
	CreateStatusList(ctx context.Context, l StatusList) error
	// GetStatusList returns the status list with the given ID. Returns ErrNotFound if there is
	// none (never allocated, or expired and purged).
	GetStatusList(ctx context.Context, id string) (StatusList, error)

	// MarkUsed records that the single-use value id (a hash, such as that of a DPoP proof's key
	// and jti, RFC 9449 §11.1) was used, until expiresAt. It reports true if id was not recorded
	// or its record had expired at now, and false if it was recorded and live: a replay. Of two
	// concurrent calls with one id, exactly one reports true, whichever instance makes them.
	MarkUsed(ctx context.Context, id [32]byte, expiresAt, now time.Time) (bool, error)

	// DeleteExpired deletes codes, refresh tokens, grant token status entries, status lists and
	// used-value records (MarkUsed) that expired before now and returns how many. Expired
	// sessions are ExpireSessions's.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
	// DeleteAuditBefore deletes audit entries older than t (the retention policy) and returns
	// how many.
	DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error)
	// ListAudit returns up to limit audit entries, newest first.
	ListAudit(ctx context.Context, limit int) ([]AuditEntry, error)

	// CreateKey stores a key. Returns ErrAlreadyExists if its ID is taken.
	CreateKey(ctx context.Context, k Key) error
	// ListKeys returns the keys of the given use, retired ones included, in SortKeys order
	// (newest first).
	ListKeys(ctx context.Context, use string) ([]Key, error)
	// RetireKey retires the key id at rev.RevokedAt and writes rev (the record that tells event
	// subscribers, with its audit entry) in the same transaction. If the key is the one in force
	// for its use at that moment (ActiveKey), the key that replaces it (PlanRetirement) has its
	// ActivatesAt brought forward to that moment, and its id is returned; if no key can replace
	// it, RetireKey returns ErrKeyInUse and writes nothing. Retiring a retired key changes
	// nothing. Returns ErrNotFound if there is no such key. Concurrent calls are serialized, so
	// no interleaving leaves a use without a key.
	RetireKey(ctx context.Context, id string, rev Revocation) (activated string, err error)

	// CreateRegistrationToken stores an initial access token (its hash). Returns
	// ErrAlreadyExists if its ID or hash is taken.
	CreateRegistrationToken(ctx context.Context, t RegistrationToken) error
	// GetRegistrationToken returns the registration token with the given hash, expired or not.
	// Returns ErrNotFound if there is none (never made, deleted, or expired and purged).
	GetRegistrationToken(ctx context.Context, hash string) (RegistrationToken, error)
	// ListRegistrationTokens returns every registration token, oldest first.
	ListRegistrationTokens(ctx context.Context) ([]RegistrationToken, error)
	// DeleteRegistrationToken deletes the registration token id. Returns ErrNotFound if there
	// is none.
	DeleteRegistrationToken(ctx context.Context, id string) error
	// The durable outbox (outbox.go). A store method whose change causes messages writes them
	// in its own transaction (store/internal/sqlstore.EnqueueOutbox); Enqueue is for callers
	// with no other change to make.

	// Enqueue durably writes msgs, pending, in one transaction and returns their IDs in order.
	// Each needs a Kind, a CreatedAt and a Deadline not before it; nothing is written if one
	// lacks them.
	Enqueue(ctx context.Context, msgs []OutboxMessage) ([]int64, error)
	// ClaimOutbox leases to c.Owner, until c.LeaseUntil, up to c.Limit pending messages of
	// c.Kinds that are due at c.Now and not leased beyond it (never leased, released, or whose
	// lease lapsed), the earliest due first (then by ID), and returns them. Of concurrent
	// claims, on any instances, each message goes to one.
	ClaimOutbox(ctx context.Context, c OutboxClaim) ([]OutboxMessage, error)
	// CompleteOutbox marks the message delivered at at, drops its payload and ends its lease.
	// Returns ErrLeaseLost, and changes nothing, unless the message is pending and leased to
	// owner (a lapsed lease no one else has claimed still counts).
	CompleteOutbox(ctx context.Context, id int64, owner string, at time.Time) error
	// RetryOutbox records a failed attempt: Attempts+1, LastError lastErr, due again at next,
	// lease released. Returns ErrLeaseLost as CompleteOutbox does.
	RetryOutbox(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error
	// DeferOutbox makes the message due again at next and releases its lease, without counting
	// an attempt (the receiver is paused, or this instance is stopping). Returns ErrLeaseLost as
	// CompleteOutbox does.
	DeferOutbox(ctx context.Context, id int64, owner string, next time.Time) error
	// GiveUpOutbox marks the message failed at at with lastErr (one more attempt counted), drops
	// its payload, and writes an audit entry (actor "outbox", action "outbox_give_up") in the
	// same transaction. Returns ErrLeaseLost as CompleteOutbox does.
	GiveUpOutbox(ctx context.Context, id int64, owner string, at time.Time, lastErr string) error
	// GetOutbox returns the message with the given ID, in any state. Returns ErrNotFound if
	// there is none (never enqueued, or finished and deleted).
	GetOutbox(ctx context.Context, id int64) (OutboxMessage, error)
	// ListOutbox returns the messages, in any state, that match f, newest first (by ID).
	ListOutbox(ctx context.Context, f OutboxFilter) ([]OutboxMessage, error)
	// OutboxStats describes the pending messages of each kind that has any, ordered by kind.
	OutboxStats(ctx context.Context) ([]OutboxStat, error)
	// DeleteFinishedOutbox deletes delivered and failed messages finished before t, never a
	// pending one, and returns how many.
	DeleteFinishedOutbox(ctx context.Context, t time.Time) (int64, error)
	// ReleaseOutboxLeases ends every lease, without counting an attempt, and returns how many
	// it ended: for a store that one instance alone uses (SQLite, whose data directory is
	// locked), at that instance's start, when every lease is left from before a restart.
	ReleaseOutboxLeases(ctx context.Context) (int64, error)

	// Shared Signals streams (signals.go). The methods above that end sessions, revoke grants,
	// set a password, delete a user, delete a client or change a client's secret, and
	// DeleteExpired for the sessions it purges, write a Signal per fact to the outbox in their
	// transaction while any stream is not disabled.

	// CreateSSFStream stores a new stream, unless its client already has maxPerClient streams
	// (ErrLimit). Returns ErrAlreadyExists if its ID is taken.
	CreateSSFStream(ctx context.Context, st SSFStream, maxPerClient int) error
	// GetSSFStream returns the stream with the given ID. Returns ErrNotFound if there is none.
	GetSSFStream(ctx context.Context, id string) (SSFStream, error)
	// ListSSFStreams returns the streams of clientID (every stream if clientID is empty), in
	// creation order.
	ListSSFStreams(ctx context.Context, clientID string) ([]SSFStream, error)
	// UpdateSSFStream changes the stream id in one transaction: it reads the stream, holding it
	// until commit, calls change on it, writes what change made of its configuration and status
	// (ID, ClientID and CreatedAt are kept), and returns the stream written. Concurrent changes
	// of one stream, on any instance, are serialized, each made to the stream as the one before
	// left it, so none undoes another's. If change returns an error, nothing is written and that
	// error is returned, wrapped. change must not use the store. A stream that becomes disabled
	// drops the events it holds (SSF 1.0 §8.1.2: not held); one that becomes enabled makes its
	// held pushes due at its UpdatedAt. One whose method changes drops its pushes not yet
	// claimed and, if it becomes push, gets a push (kind OutboxSSFPush) for every event it
	// holds, due at its UpdatedAt, in the same transaction. Returns ErrNotFound, without calling
	// change, if there is no such stream.
	UpdateSSFStream(ctx context.Context, id string, change func(*SSFStream) error) (SSFStream, error)
	// DeleteSSFStream deletes the stream, its subjects, its events and its pending pushes.
	// Returns ErrNotFound if there is no such stream.
	DeleteSSFStream(ctx context.Context, id string) error
	// AddSSFSubject adds sub to its stream; adding one already there changes nothing. Returns
	// ErrNotFound if there is no such stream, ErrLimit if it already has maxPerStream subjects.
	AddSSFSubject(ctx context.Context, sub SSFSubject, maxPerStream int) error
	// RemoveSSFSubject removes the subject id from the stream and reports whether it was there.
	RemoveSSFSubject(ctx context.Context, streamID, id string) (bool, error)
	// CountSSFSubjects returns how many subjects the stream has.
	CountSSFSubjects(ctx context.Context, streamID string) (int64, error)
	// SSFSubjectsMatching returns the subjects, of any stream, that have one of keys, each once.
	SSFSubjectsMatching(ctx context.Context, keys []string) ([]SSFSubject, error)
	// AppendSSFEvents appends the events to their streams in one transaction and returns how
	// many it appended: an event whose stream is gone or disabled, or which has the Source and
	// Type of one the stream already has, is skipped (so appending again is harmless). For each
	// event appended to a push stream, an outbox message of kind OutboxSSFPush is written in the
	// same transaction, due at the event's CreatedAt, to be given up after pushWindow. An append
	// and a change of its stream (UpdateSSFStream) are serialized, on any instance: the event is
	// appended to the stream as the change left it, or the change finds it held.
	AppendSSFEvents(ctx context.Context, evs []SSFEvent, pushWindow time.Duration) (int, error)
	// GetSSFEvent returns the stream's event jti. Returns ErrNotFound if there is none.
	GetSSFEvent(ctx context.Context, streamID, jti string) (SSFEvent, error)
	// PendingSSFEvents returns up to limit events of the stream not yet acknowledged, oldest
	// first.
	PendingSSFEvents(ctx context.Context, streamID string, limit int) ([]SSFEvent, error)
	// AckSSFEvents acknowledges, at at, the stream's pending events whose jti is in acks or in
	// errs (RFC 8936 §2.4: setErrs acknowledge too); for each of errs it records the error and
	// writes an audit entry (actor, action "ssf_set_error") in the same transaction. Unknown or
	// already acknowledged jtis are ignored. It returns how many events it acknowledged.
	AckSSFEvents(ctx context.Context, streamID string, acks []string, errs map[string]string, actor string, at time.Time) (int64, error)
	// ClaimSSFVerification records a verification request on the stream at now unless one was
	// recorded less than interval before (it then reports false). Returns ErrNotFound if there
	// is no such stream.
	ClaimSSFVerification(ctx context.Context, streamID string, now time.Time, interval time.Duration) (bool, error)
	// SSFBacklog counts the pending events of every stream and returns when the oldest was
	// appended (zero if none).
	SSFBacklog(ctx context.Context) (int64, time.Time, error)
	// DeleteSSFEvents deletes events acknowledged before acked and pending events appended
	// before pending, and returns how many.
	DeleteSSFEvents(ctx context.Context, acked, pending time.Time) (int64, error)

	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// ValidScopeToken reports whether s is a scope-token of RFC 6749 §3.3:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func ValidScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// MaxResourceLength bounds a resource identifier (RFC 8707).
const MaxResourceLength = 2000

// ValidResource reports whether s may be a resource indicator (RFC 8707 §2): an absolute URI
// (a scheme and a host, or an opaque part as in a URN) without a fragment, of at most
// MaxResourceLength bytes of printable ASCII.
func ValidResource(s string) bool {
	if s == "" || len(s) > MaxResourceLength || strings.Contains(s, "#") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && (u.Host != "" || u.Opaque != "") && u.User == nil
}

// ParseScope parses a requested scope (RFC 6749 §3.3: scope-tokens separated by spaces) against
// the scopes allowed, in the order requested and without repeats. An empty request gets all of
// allowed. It returns an error if a token is malformed or not allowed, or if a non-empty request
// names no scope.
func ParseScope(requested string, allowed []string) ([]string, error) {
	if requested == "" {
		return append([]string(nil), allowed...), nil
	}
	var out []string
	for _, sc := range strings.Split(requested, " ") {
		if sc == "" {
			continue
		}
		if !ValidScopeToken(sc) {
			return nil, errors.New("the scope is malformed")
		}
		if !slices.Contains(allowed, sc) {
			return nil, errors.New("the requested scope exceeds what may be granted")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the scope is malformed")
	}
	return out, nil
}
