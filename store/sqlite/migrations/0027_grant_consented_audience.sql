-- The audiences a person consented to for a grant (the resources of every consent, the issuer
-- standing for a consent that named none): what the authorization endpoint may issue a code for
-- without asking again. grants.audience also grows when a code or refresh issues a token for the
-- resources the operator limited the client to, so that the grant's revocation reaches them;
-- that is no consent (re-audit 4 #5). A JSON array; empty for a grant recorded before: no
-- consent known, the person is asked again.
ALTER TABLE grants ADD COLUMN consented_audience TEXT NOT NULL DEFAULT '[]';
