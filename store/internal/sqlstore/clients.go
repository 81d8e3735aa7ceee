package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rescind/rescind"
)

const clientColumns = `id, name, secret_hash, public, grant_types, scopes, redirect_uris, token_ttl_ns, created_at, allow_plain_pkce, token_format,
	resource_server, resources, allow_insecure_redirect, previous_secret_hash, previous_secret_expires_at, require_dpop, first_party,
	allowed_resources, registration, registration_token_hash,
	id_token_alg, post_logout_redirect_uris, backchannel_logout_uri, backchannel_logout_session_required, scope_limit`

// prefixed returns the comma-separated columns cols with each name prefixed by table and a dot,
// for a join.
func prefixed(table, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = table + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

func scanClient(row Row) (rescind.Client, error) {
	var c rescind.Client
	var gt, sc, ru, res, allowed, plr, limit string
	var ttl, created, prevExp int64
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, &gt, &sc, &ru, &ttl, &created, &c.AllowPlainPKCE, &c.TokenFormat,
		&c.ResourceServer, &res, &c.AllowInsecureRedirect, &c.PreviousSecretHash, &prevExp, &c.RequireDPoP, &c.FirstParty, &allowed,
		&c.Registration, &c.RegistrationTokenHash, &c.IDTokenAlg, &plr, &c.BackchannelLogoutURI, &c.BackchannelLogoutSessionRequired, &limit); err != nil {
		return c, err
	}
	var err error
	if c.PostLogoutRedirectURIs, err = ParseList(plr); err != nil {
		return c, fmt.Errorf("post_logout_redirect_uris: %w", err)
	}
	if c.GrantTypes, err = ParseList(gt); err != nil {
		return c, fmt.Errorf("grant_types: %w", err)
	}
	if c.Scopes, err = ParseList(sc); err != nil {
		return c, fmt.Errorf("scopes: %w", err)
	}
	if c.RedirectURIs, err = ParseList(ru); err != nil {
		return c, fmt.Errorf("redirect_uris: %w", err)
	}
	if c.Resources, err = ParseList(res); err != nil {
		return c, fmt.Errorf("resources: %w", err)
	}
	if c.AllowedResources, err = ParseList(allowed); err != nil {
		return c, fmt.Errorf("allowed_resources: %w", err)
	}
	if c.ScopeLimit, err = ParseList(limit); err != nil { // JSON null: no limit
		return c, fmt.Errorf("scope_limit: %w", err)
	}
	c.TokenTTL = time.Duration(ttl)
	c.CreatedAt = FromNanos(created)
	c.PreviousSecretExpiresAt = OptionalTime(prevExp)
	return c, nil
}

// tokenFormat stores an empty format as opaque.
func tokenFormat(f string) string {
	if f == "" {
		return rescind.TokenFormatOpaque
	}
	return f
}

// CreateClient implements rescind.Store. Other instances learn of the new client at commit
// (Dialect.Notify), so what they derive from every client at once (the origins CORS allows,
// scopes_supported; clientreg.Snapshot) includes it at once.
func (s *Store) CreateClient(ctx context.Context, c rescind.Client) error {
	err := s.db.InTx(ctx, func(tx Querier) error {
		if _, err := tx.Exec(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)`,
			c.ID, c.Name, c.SecretHash, c.Public, JSONList(c.GrantTypes), JSONList(c.Scopes), JSONList(c.RedirectURIs),
			int64(c.TokenTTL), Nanos(c.CreatedAt), c.AllowPlainPKCE, tokenFormat(c.TokenFormat),
			c.ResourceServer, JSONList(c.Resources), c.AllowInsecureRedirect, c.PreviousSecretHash, OptionalNanos(c.PreviousSecretExpiresAt),
			c.RequireDPoP, c.FirstParty, JSONList(c.AllowedResources), c.Registration, c.RegistrationTokenHash,
			c.IDTokenAlg, JSONList(c.PostLogoutRedirectURIs), c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired, OptionalJSONList(c.ScopeLimit)); err != nil {
			return err
		}
		return s.notify(ctx, tx, ClientChanged, c.ID)
	})
	if s.d.IsUniqueViolation(err) {
		return s.errorf("client %q: %w", c.ID, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return s.errorf("creating client: %w", err)
	}
	return nil
}

// GetClient implements rescind.Store.
func (s *Store) GetClient(ctx context.Context, id string) (rescind.Client, error) {
	c, err := scanClient(s.db.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if isNoRows(err) {
		return c, s.errorf("client %q: %w", id, rescind.ErrNotFound)
	}
	if err != nil {
		return c, s.errorf("reading client %q: %w", id, err)
	}
	return c, nil
}

// ListClients implements rescind.Store.
func (s *Store) ListClients(ctx context.Context) ([]rescind.Client, error) {
	out, err := All(ctx, s.db, scanClient, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
	if err != nil {
		return nil, s.errorf("listing clients: %w", err)
	}
	return out, nil
}

// UpdateClient implements rescind.Store: one statement that writes only the columns u sets, so
// that a concurrent change of the others (a secret rotation on another instance) is never undone.
// Other instances learn of the change at commit (Dialect.Notify), so none keeps a stale copy.
func (s *Store) UpdateClient(ctx context.Context, id string, u rescind.ClientUpdate) (rescind.Client, error) {
	var sets []string
	args := []any{id}
	set := func(col string, v any) {
		args = append(args, v)
		sets = append(sets, fmt.Sprintf("%s = $%d", col, len(args)))
	}
	if u.Name != nil {
		set("name", *u.Name)
	}
	if u.Scopes != nil {
		set("scopes", JSONList(*u.Scopes))
	}
	if u.RedirectURIs != nil {
		set("redirect_uris", JSONList(*u.RedirectURIs))
	}
	if u.TokenTTL != nil {
		set("token_ttl_ns", int64(*u.TokenTTL))
	}
	if u.RequireDPoP != nil {
		set("require_dpop", *u.RequireDPoP)
	}
	if u.FirstParty != nil {
		set("first_party", *u.FirstParty)
	}
	if u.GrantTypes != nil {
		set("grant_types", JSONList(*u.GrantTypes))
	}
	if u.TokenFormat != nil {
		set("token_format", tokenFormat(*u.TokenFormat))
	}
	if u.AllowInsecureRedirect != nil {
		set("allow_insecure_redirect", *u.AllowInsecureRedirect)
	}
	if u.AllowedResources != nil {
		set("allowed_resources", JSONList(*u.AllowedResources))
	}
	if u.IDTokenAlg != nil {
		set("id_token_alg", *u.IDTokenAlg)
	}
	if u.PostLogoutRedirectURIs != nil {
		set("post_logout_redirect_uris", JSONList(*u.PostLogoutRedirectURIs))
	}
	if u.BackchannelLogoutURI != nil {
		set("backchannel_logout_uri", *u.BackchannelLogoutURI)
	}
	if u.BackchannelLogoutSessionRequired != nil {
		set("backchannel_logout_session_required", *u.BackchannelLogoutSessionRequired)
	}
	if u.ScopeLimit != nil {
		set("scope_limit", OptionalJSONList(*u.ScopeLimit))
	}
	if len(sets) == 0 {
		return s.GetClient(ctx, id)
	}
	return s.changeClient(ctx, id, `UPDATE clients SET `+strings.Join(sets, ", ")+` WHERE id = $1 RETURNING `+clientColumns, args...)
}

// RotateClientSecret implements rescind.Store.
func (s *Store) RotateClientSecret(ctx context.Context, id, hash string, previousUntil time.Time) (rescind.Client, error) {
	// One statement: its right-hand sides read the row as it is when the statement writes it
	// (PostgreSQL re-reads a row it waited for), so the replaced secret is the stored one.
	// Shared Signals: CAEP credential-change for the client's secret, in this transaction.
	change := "update"
	if hash == "" {
		change = "delete"
	}
	signal := func(tx Querier) error {
		return EnqueueSignals(ctx, tx, rescind.Signal{Kind: rescind.SignalClientSecretChanged, ClientID: id, Change: change})
	}
	return s.changeClientThen(ctx, id, signal, `UPDATE clients SET previous_secret_hash = CASE WHEN $2 THEN secret_hash ELSE '' END,
		previous_secret_expires_at = $3, secret_hash = $4 WHERE id = $1 RETURNING `+clientColumns,
		id, !previousUntil.IsZero(), OptionalNanos(previousUntil), hash)
}

// changeClient runs query, an UPDATE of the client id that returns its columns, and tells the
// other instances at commit (they drop their cached copy and verified secrets).
func (s *Store) changeClient(ctx context.Context, id, query string, args ...any) (rescind.Client, error) {
	return s.changeClientThen(ctx, id, nil, query, args...)
}

// changeClientThen is changeClient that also runs then, if not nil, in the transaction.
func (s *Store) changeClientThen(ctx context.Context, id string, then func(tx Querier) error, query string, args ...any) (rescind.Client, error) {
	var c rescind.Client
	err := s.db.InTx(ctx, func(tx Querier) error {
		var err error
		c, err = scanClient(tx.QueryRow(ctx, query, args...))
		if isNoRows(err) {
			return rescind.ErrNotFound
		}
		if err != nil {
			return err
		}
		if then != nil {
			if err := then(tx); err != nil {
				return err
			}
		}
		return s.notify(ctx, tx, ClientChanged, id)
	})
	if err != nil {
		return rescind.Client{}, s.errorf("updating client %q: %w", id, err)
	}
	return c, nil
}

// ClientDeletion deletes the client id in tx, writes the audit entry of its deletion (rev's
// Actor and Reason, dated now, if rev.Actor is set) and revokes its grants at now as
// GrantRevocations does (lock is the clause for its first read, and for the read of the
// client's Shared Signals streams: " FOR UPDATE" on PostgreSQL). It returns the records to
// write: the grants' and rev, without its Actor (the one entry is written). A missing client
// is rescind.ErrNotFound.
func ClientDeletion(ctx context.Context, tx Querier, id string, now time.Time, rev rescind.Revocation, lock string) ([]rescind.Revocation, error) {
	n, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, rescind.ErrNotFound
	}
	// A deleted client is told of no session's end.
	if _, err := tx.Exec(ctx, `DELETE FROM session_clients WHERE client_id = $1`, id); err != nil {
		return nil, fmt.Errorf("forgetting the client's sessions: %w", err)
	}
	// One audit entry for the deletion, dated now (the cut-off is later), not one per grant.
	if rev.Actor != "" {
		if err := writeAudit(ctx, tx, now, rev); err != nil {
			return nil, err
		}
	}
	rev.Actor = ""
	// The client's Shared Signals streams go with it: nothing more is sent to a receiver that
	// no longer exists.
	if err := deleteClientStreams(ctx, tx, id, lock); err != nil {
		return nil, err
	}
	revs, _, err := GrantRevocations(ctx, tx, rescind.GrantFilter{ClientID: id}, rescind.Revocation{RevokedAt: now, Subject: rev.Subject}, lock)
	if err != nil {
		return nil, err
	}
	return append(revs, rev), nil
}
