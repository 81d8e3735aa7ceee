package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientdoc"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, package
// internal/clientdoc): with Config.ClientDocuments, an https URL is accepted as a client_id at
// the authorization endpoint, and the client is what the document at that URL says, fetched
// safely and cached. Such a client is public and must use PKCE like every client here. When a
// person allows it, a copy of it is stored under its URL (a client like any other for the token
// endpoint, revocation and the connected apps page), refreshed whenever its document changes.
// Deleting it revokes what it holds; its URL is then refused until that revocation ends, as a
// deleted client's id is never reused.

// documentClient returns the client whose client_id is the metadata document URL id, or the
// message of the page that refuses it.
func (s *Server) documentClient(r *http.Request, id string) (rescind.Client, string) {
	now := s.now()
	if s.revoked.IsRevoked("", "", id, now) {
		return rescind.Client{}, "This app was removed by the server's administrator: it cannot be used now."
	}
	if !s.docs.Cached(id) {
		// Fetching costs the server an outbound request: a bounded number per address.
		if _, ok, _ := s.docLimiter.Reserve("clientdoc:" + networkKey(r)); !ok {
			s.log.WarnContext(r.Context(), "security: metadata document fetches rate limited", "remote", r.RemoteAddr)
			return rescind.Client{}, "Too many apps were looked up from this address. Wait a minute and try again."
		}
	}
	c, err := s.docs.Resolve(r.Context(), id)
	var de *clientdoc.Error
	switch {
	case errors.As(err, &de):
		s.log.InfoContext(r.Context(), "client metadata document refused", "client_id", id, "reason", de.Reason)
		return rescind.Client{}, "The app's metadata document (its client_id) cannot be used: " + de.Reason + "."
	case errors.Is(err, clientdoc.ErrBusy):
		return rescind.Client{}, "The server is busy looking up apps. Try again in a moment."
	case err != nil:
		return rescind.Client{}, "The app's metadata document (its client_id) could not be fetched."
	}
	// What an operator set on the stored copy (its scope limit, allowed resources, token
	// lifetime, DPoP, first-party) is not the document's to undo (audit 16 #2).
	switch stored, err := s.clients.Get(r.Context(), id); {
	case err == nil && stored.Registration == rescind.RegistrationMetadataDocument:
		c.ScopeLimit, c.AllowedResources, c.TokenTTL = stored.ScopeLimit, stored.AllowedResources, stored.TokenTTL
		c.RequireDPoP, c.FirstParty, c.CreatedAt = stored.RequireDPoP, stored.FirstParty, stored.CreatedAt
	case err != nil && !errors.Is(err, rescind.ErrNotFound):
		s.log.ErrorContext(r.Context(), "reading the stored copy of a metadata document client", "err", err)
		return rescind.Client{}, "The app could not be looked up. Try again in a moment."
	}
	if len(s.scopes) > 0 && len(c.Scopes) > 0 {
		// --scopes bounds these clients as it bounds registrations (audit 16 #4): the document's
		// scopes beyond it are dropped; one naming none of them is refused, not given all.
		kept := intersectScopes(c.Scopes, s.scopes)
		if len(kept) == 0 {
			return rescind.Client{}, "The app's metadata document (its client_id) cannot be used: it names no scope this server supports."
		}
		c.Scopes = kept
	}
	c.TokenFormat = s.selfTokenFormat
	return c, ""
}

// storeDocumentClient stores c, a client resolved from its metadata document, under its URL:
// created, or updated if the document changed. A client of that id registered otherwise is
// never replaced.
func (s *Server) storeDocumentClient(ctx context.Context, c rescind.Client) error {
	stored, err := s.store.GetClient(ctx, c.ID)
	switch {
	case errors.Is(err, rescind.ErrNotFound):
		err = s.store.CreateClient(ctx, c)
		if errors.Is(err, rescind.ErrAlreadyExists) { // stored meanwhile, by a concurrent request
			return s.storeDocumentClient(ctx, c)
		}
		s.clients.Invalidate(c.ID)
		if err == nil {
			s.log.InfoContext(ctx, "client of a metadata document stored", "client_id", c.ID, "client_name", c.Name)
		}
		return err
	case err != nil:
		return err
	case stored.Registration != rescind.RegistrationMetadataDocument:
		return fmt.Errorf("client %q exists and was not registered by a metadata document", c.ID)
	case stored.Name == c.Name && slices.Equal(stored.RedirectURIs, c.RedirectURIs) && slices.Equal(stored.GrantTypes, c.GrantTypes) &&
		slices.Equal(stored.Scopes, c.Scopes) && stored.AllowInsecureRedirect == c.AllowInsecureRedirect && stored.TokenFormat == c.TokenFormat:
		return nil
	}
	_, err = s.store.UpdateClient(ctx, c.ID, rescind.ClientUpdate{Name: &c.Name, RedirectURIs: &c.RedirectURIs,
		GrantTypes: &c.GrantTypes, Scopes: &c.Scopes, AllowInsecureRedirect: &c.AllowInsecureRedirect, TokenFormat: &c.TokenFormat})
	s.clients.Invalidate(c.ID)
	return err
}
