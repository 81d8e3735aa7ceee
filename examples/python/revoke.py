#!/usr/bin/env python3
"""Revoke an OAuth 2.0 token (RFC 7009) with requests, done right.

    RESCIND_ISSUER=http://127.0.0.1:8080 RESCIND_CLIENT_ID=... RESCIND_CLIENT_SECRET=... python3 revoke.py

The classic snippet this corrects:
  * it used base64 without `import base64`;
  * it Basic-encoded "id:secret" as is, but RFC 6749 §2.3.1 says the client id and secret are
    each application/x-www-form-urlencoded first (quote_plus), so secrets with ':', '%', '+',
    spaces or non-ASCII characters are sent intact;
  * it treated 200 as "the token was revoked", but RFC 7009 §2.2 answers 200 for unknown,
    expired and already revoked tokens too: 200 means "this token is not valid now", and only
    introspection (RFC 7662) can tell you a token's state. (A client may introspect its own
    tokens; at Rescind, other clients' access tokens need a client created with --resource-server.)
"""
import base64
import os
import sys
from urllib.parse import quote_plus

import requests


def basic_auth(client_id: str, client_secret: str) -> str:
    """Authorization header value per RFC 6749 §2.3.1."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")


def revoke_token(revocation_url, token, token_type_hint, client_id, client_secret):
    """Revoke token. Raises for anything but 200, which also means 'unknown to the server'."""
    resp = requests.post(
        revocation_url,
        data={"token": token, "token_type_hint": token_type_hint},
        headers={"Authorization": basic_auth(client_id, client_secret)},
        timeout=10,
    )
    if resp.status_code != 200:
        # RFC 6749 §5.2 error body, e.g. {"error": "invalid_client"}; 503 may carry Retry-After.
        raise RuntimeError(f"revocation failed: HTTP {resp.status_code} {resp.text}")


def main():
    issuer = os.environ["RESCIND_ISSUER"].rstrip("/")
    client_id = os.environ["RESCIND_CLIENT_ID"]
    client_secret = os.environ["RESCIND_CLIENT_SECRET"]
    auth = {"Authorization": basic_auth(client_id, client_secret)}

    meta = requests.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10).json()
    token = requests.post(meta["token_endpoint"], data={"grant_type": "client_credentials"},
                          headers=auth, timeout=10).json()["access_token"]

    def active():
        r = requests.post(meta["introspection_endpoint"], data={"token": token}, headers=auth, timeout=10)
        r.raise_for_status()
        return r.json()["active"]

    before = active()
    revoke_token(meta["revocation_endpoint"], token, "access_token", client_id, client_secret)
    after = active()
    if not before or after:
        sys.exit(f"unexpected: active before={before}, after={after}")
    print("ok: token revoked; introspection says active=false")


if __name__ == "__main__":
    main()
