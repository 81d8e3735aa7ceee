// DPoP (RFC 9449) against a Rescind server with a real client library: openid-client or
// oauth4webapi, chosen by the first argument. Run by TestNodeDPoPInterop (cmd/rescind), which
// starts the server and a resource server using the resource middleware, and passes:
//
//   ISSUER, CC_CLIENT_ID, CC_CLIENT_SECRET (a confidential client, client credentials),
//   PUBLIC_CLIENT_ID, REDIRECT_URI (a public client, code flow), RESOURCE_URL.
//
// It speaks JSON lines on stdout. The code flow needs a person: the script prints
// {"authorize": URL, "verifier": PKCE verifier} (the authorization request names dpop_jkt, RFC
// 9449 §10, so the test can show that the code with its verifier is useless without the key),
// and reads the redirect (callback) URL on stdin. Once done it prints
// {"result": {...}} and waits for a line "revoke" on stdin, so the test can check copies of the
// tokens first; then it revokes the refresh token and prints {"revoked": ...}.
import * as readline from 'node:readline';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';

const lib = process.argv[2];
if (lib !== 'openid-client' && lib !== 'oauth4webapi') {
  throw new Error('usage: node dpop.mjs openid-client|oauth4webapi');
}
const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const issuer = new URL(env('ISSUER'));
const resourceURL = new URL(env('RESOURCE_URL'));
const redirectURI = env('REDIRECT_URI');
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const readLine = async () => {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed');
  return value.trim();
};

// Counts requests per endpoint path and the use_dpop_nonce answers, to show the retries.
const seen = { requests: {}, nonceErrors: 0 };
const countingFetch = async (url, init) => {
  const path = new URL(url).pathname;
  seen.requests[path] = (seen.requests[path] || 0) + 1;
  const res = await fetch(url, init);
  if (res.status === 400 || res.status === 401) {
    const www = res.headers.get('www-authenticate') || '';
    if (www.includes('use_dpop_nonce')) seen.nonceErrors++;
    else if (res.status === 400) {
      const body = await res.clone().json().catch(() => ({}));
      if (body.error === 'use_dpop_nonce') seen.nonceErrors++;
    }
  }
  return res;
};

// thumbprint is the JWK SHA-256 thumbprint (RFC 7638) of an EC P-256 public key.
const thumbprint = async (publicKey) => {
  const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', publicKey);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(JSON.stringify({ crv, kty, x, y })));
  return Buffer.from(digest).toString('base64url');
};

const result = { lib };

if (lib === 'openid-client') {
  const keyPair = await client.randomDPoPKeyPair('ES256');
  // RFC 8414 discovery: Rescind serves no OpenID Provider metadata (openid-configuration).
  const opts = { algorithm: 'oauth2', execute: [client.allowInsecureRequests], [client.customFetch]: countingFetch };
  // Client credentials, confidential client.
  const cc = await client.discovery(issuer, env('CC_CLIENT_ID'), undefined, client.ClientSecretBasic(env('CC_CLIENT_SECRET')), opts);
  cc[client.customFetch] = countingFetch;
  const ccDPoP = client.getDPoPHandle(cc, keyPair);
  const ccTok = await client.clientCredentialsGrant(cc, { scope: 'read' }, { DPoP: ccDPoP });
  result.cc = { token_type: ccTok.token_type };
  const ccDPoPRS = client.getDPoPHandle(cc, keyPair);
  result.cc.resource = (await client.fetchProtectedResource(cc, ccTok.access_token, resourceURL, 'GET', null, undefined, { DPoP: ccDPoPRS })).status;
  await client.tokenRevocation(cc, ccTok.access_token);
  try {
    const res = await client.fetchProtectedResource(cc, ccTok.access_token, resourceURL, 'GET', null, undefined, { DPoP: ccDPoPRS });
    result.cc.after_revoke = res.status;
  } catch (err) {
    result.cc.after_revoke = err.status ?? err.cause?.status ?? String(err);
  }

  // Code flow, public client, bound refresh token.
  const pub = await client.discovery(issuer, env('PUBLIC_CLIENT_ID'), undefined, client.None(), opts);
  pub[client.customFetch] = countingFetch;
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const dpop = client.getDPoPHandle(pub, keyPair);
  const authURL = client.buildAuthorizationUrl(pub, {
    redirect_uri: redirectURI, scope: 'read', state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    dpop_jkt: await dpop.calculateThumbprint(),
  });
  out({ authorize: authURL.href, verifier });
  const callback = new URL(await readLine());
  const tok = await client.authorizationCodeGrant(pub, callback, { pkceCodeVerifier: verifier, expectedState: state }, undefined, { DPoP: dpop });
  result.code = { token_type: tok.token_type, refresh: !!tok.refresh_token };
  result.code.resource = (await client.fetchProtectedResource(pub, tok.access_token, resourceURL, 'GET', null, undefined, { DPoP: dpop })).status;
  const refreshed = await client.refreshTokenGrant(pub, tok.refresh_token, undefined, { DPoP: dpop });
  result.code.refreshed_token_type = refreshed.token_type;
  result.code.refreshed_resource = (await client.fetchProtectedResource(pub, refreshed.access_token, resourceURL, 'GET', null, undefined, { DPoP: dpop })).status;
  result.access_token = refreshed.access_token;
  result.refresh_token = refreshed.refresh_token;
  result.jkt = await thumbprint(keyPair.publicKey);
  result.seen = seen;
  out({ result });
  if ((await readLine()) !== 'revoke') throw new Error('expected "revoke"');
  await client.tokenRevocation(pub, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
  out({ revoked: true });
} else {
  const keyPair = await oauth.generateKeyPair('ES256');
  const o = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: countingFetch };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...o, algorithm: 'oauth2' }));
  // Retries a request once if the server asks for a nonce (RFC 9449 §8, §9): the DPoP handle
  // has cached it from the error answer.
  const withNonceRetry = async (f) => {
    try {
      return await f();
    } catch (err) {
      if (oauth.isDPoPNonceError(err)) return await f();
      throw err;
    }
  };
  // Client credentials, confidential client.
  const ccClient = { client_id: env('CC_CLIENT_ID') };
  const ccAuth = oauth.ClientSecretBasic(env('CC_CLIENT_SECRET'));
  const ccDPoP = oauth.DPoP(ccClient, keyPair);
  const ccTok = await withNonceRetry(async () => oauth.processClientCredentialsResponse(as, ccClient,
    await oauth.clientCredentialsGrantRequest(as, ccClient, ccAuth, new URLSearchParams({ scope: 'read' }), { ...o, DPoP: ccDPoP })));
  result.cc = { token_type: ccTok.token_type };
  const resource = async (token, handle) => {
    try {
      return (await withNonceRetry(() => oauth.protectedResourceRequest(token, 'GET', resourceURL, undefined, null, { ...o, DPoP: handle }))).status;
    } catch (err) {
      if (err instanceof oauth.WWWAuthenticateChallengeError) return err.status;
      throw err;
    }
  };
  result.cc.resource = await resource(ccTok.access_token, ccDPoP);
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, ccClient, ccAuth, ccTok.access_token, o));
  result.cc.after_revoke = await resource(ccTok.access_token, ccDPoP);

  // Code flow, public client, bound refresh token.
  const pubClient = { client_id: env('PUBLIC_CLIENT_ID') };
  const none = oauth.None();
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const dpop = oauth.DPoP(pubClient, keyPair);
  const authURL = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({
    client_id: pubClient.client_id, response_type: 'code', redirect_uri: redirectURI, scope: 'read', state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    dpop_jkt: await dpop.calculateThumbprint(),
  })) authURL.searchParams.set(k, v);
  out({ authorize: authURL.href, verifier });
  const params = oauth.validateAuthResponse(as, pubClient, new URL(await readLine()), state);
  const tok = await withNonceRetry(async () => oauth.processAuthorizationCodeResponse(as, pubClient,
    await oauth.authorizationCodeGrantRequest(as, pubClient, none, params, redirectURI, verifier, { ...o, DPoP: dpop })));
  result.code = { token_type: tok.token_type, refresh: !!tok.refresh_token };
  result.code.resource = await resource(tok.access_token, dpop);
  const refreshed = await withNonceRetry(async () => oauth.processRefreshTokenResponse(as, pubClient,
    await oauth.refreshTokenGrantRequest(as, pubClient, none, tok.refresh_token, { ...o, DPoP: dpop })));
  result.code.refreshed_token_type = refreshed.token_type;
  result.code.refreshed_resource = await resource(refreshed.access_token, dpop);
  result.access_token = refreshed.access_token;
  result.refresh_token = refreshed.refresh_token;
  result.jkt = await thumbprint(keyPair.publicKey);
  result.seen = seen;
  out({ result });
  if ((await readLine()) !== 'revoke') throw new Error('expected "revoke"');
  await oauth.processRevocationResponse(await oauth.revocationRequest(as, pubClient, none, refreshed.refresh_token,
    { ...o, additionalParameters: { token_type_hint: 'refresh_token' } }));
  out({ revoked: true });
}
process.exit(0);
