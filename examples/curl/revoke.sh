#!/usr/bin/env bash
# Get a token, introspect it, revoke it (RFC 7009), introspect again, with curl alone. The client
# introspects its own token; another client's needs a resource-server client (--resource-server).
#
#   RESCIND_ISSUER=http://127.0.0.1:8080 RESCIND_CLIENT_ID=... RESCIND_CLIENT_SECRET=... ./revoke.sh
#
# Basic credentials: RFC 6749 §2.3.1 says the client id and secret are form-encoded before they
# are Basic-encoded. curl -u does not do that, so this script does it (with jq's @uri, which
# percent-encodes everything but unreserved characters; a space becomes %20, which servers decode
# like +). Secrets that Rescind generates need no encoding, but yours might.
set -euo pipefail
: "${RESCIND_ISSUER:?set RESCIND_ISSUER}" "${RESCIND_CLIENT_ID:?set RESCIND_CLIENT_ID}" "${RESCIND_CLIENT_SECRET:?set RESCIND_CLIENT_SECRET}"

enc() { jq -rn --arg v "$1" '$v|@uri'; }
AUTH="Authorization: Basic $(printf '%s:%s' "$(enc "$RESCIND_CLIENT_ID")" "$(enc "$RESCIND_CLIENT_SECRET")" | base64 -w0)"

# Discover the endpoints (RFC 8414).
META=$(curl -sf "$RESCIND_ISSUER/.well-known/oauth-authorization-server")
TOKEN_URL=$(jq -r .token_endpoint <<<"$META")
REVOKE_URL=$(jq -r .revocation_endpoint <<<"$META")
INTROSPECT_URL=$(jq -r .introspection_endpoint <<<"$META")

TOKEN=$(curl -sf -H "$AUTH" -d grant_type=client_credentials "$TOKEN_URL" | jq -r .access_token)
echo "introspect before: $(curl -sf -H "$AUTH" --data-urlencode "token=$TOKEN" "$INTROSPECT_URL" | jq -c '{active}')"

# 200 means revoked, or unknown to the server: RFC 7009 §2.2 answers the same for both.
status=$(curl -s -o /dev/null -w '%{http_code}' -H "$AUTH" --data-urlencode "token=$TOKEN" \
  -d token_type_hint=access_token "$REVOKE_URL")
[ "$status" = 200 ] || { echo "revocation failed: HTTP $status" >&2; exit 1; }

echo "introspect after: $(curl -sf -H "$AUTH" --data-urlencode "token=$TOKEN" "$INTROSPECT_URL" | jq -c '{active}')"
echo "ok: token revoked"
