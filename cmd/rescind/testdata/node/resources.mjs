// Resource indicators (RFC 8707) against a Rescind server with a real client library:
// openid-client or oauth4webapi, chosen by the first argument. Run by TestNodeResourceIndicators
// (cmd/rescind/agents_e2e_test.go), which passes:
//
//   ISSUER, CC_CLIENT_ID, CC_CLIENT_SECRET (a confidential client, client credentials),
//   PUBLIC_CLIENT_ID, REDIRECT_URI (a public client, code flow), RESOURCE_A, RESOURCE_B.
//
// Each request names two resources with two resource parameters, as the libraries send them:
// client credentials for both; the code flow's authorization request for both, its token
// request for both, then a refresh for RESOURCE_A alone. It speaks JSON lines on stdout: it
// prints {"authorize": URL}, reads the redirect (callback) URL on stdin, and prints
// {"result": {"cc": access token, "code": access token, "refreshed": access token}}.
import * as readline from 'node:readline';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';

const lib = process.argv[2];
if (lib !== 'openid-client' && lib !== 'oauth4webapi') {
  throw new Error('usage: node resources.mjs openid-client|oauth4webapi');
}
const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const issuer = new URL(env('ISSUER'));
const redirectURI = env('REDIRECT_URI');
const [a, b] = [env('RESOURCE_A'), env('RESOURCE_B')];
const both = () => new URLSearchParams([['resource', a], ['resource', b]]);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const readLine = async () => {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed');
  return value.trim();
};
const result = {};

if (lib === 'openid-client') {
  // RFC 8414 discovery: Rescind serves no OpenID Provider metadata (openid-configuration).
  const opts = { algorithm: 'oauth2', execute: [client.allowInsecureRequests] };
  const cc = await client.discovery(issuer, env('CC_CLIENT_ID'), undefined, client.ClientSecretBasic(env('CC_CLIENT_SECRET')), opts);
  result.cc = (await client.clientCredentialsGrant(cc, both())).access_token;

  const pub = await client.discovery(issuer, env('PUBLIC_CLIENT_ID'), undefined, client.None(), opts);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const params = both();
  for (const [k, v] of Object.entries({ redirect_uri: redirectURI, scope: 'read', state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' })) params.set(k, v);
  out({ authorize: client.buildAuthorizationUrl(pub, params).href });
  const tok = await client.authorizationCodeGrant(pub, new URL(await readLine()), { pkceCodeVerifier: verifier, expectedState: state }, both());
  result.code = tok.access_token;
  result.refreshed = (await client.refreshTokenGrant(pub, tok.refresh_token, new URLSearchParams([['resource', a]]))).access_token;
} else {
  const o = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...o, algorithm: 'oauth2' }));
  const ccClient = { client_id: env('CC_CLIENT_ID') };
  const ccAuth = oauth.ClientSecretBasic(env('CC_CLIENT_SECRET'));
  result.cc = (await oauth.processClientCredentialsResponse(as, ccClient,
    await oauth.clientCredentialsGrantRequest(as, ccClient, ccAuth, both(), o))).access_token;

  const pubClient = { client_id: env('PUBLIC_CLIENT_ID') };
  const none = oauth.None();
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const authURL = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({ client_id: pubClient.client_id, response_type: 'code', redirect_uri: redirectURI, scope: 'read',
    state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' })) authURL.searchParams.set(k, v);
  authURL.searchParams.append('resource', a);
  authURL.searchParams.append('resource', b);
  out({ authorize: authURL.href });
  const params = oauth.validateAuthResponse(as, pubClient, new URL(await readLine()), state);
  const tok = await oauth.processAuthorizationCodeResponse(as, pubClient,
    await oauth.authorizationCodeGrantRequest(as, pubClient, none, params, redirectURI, verifier, { ...o, additionalParameters: both() }));
  result.code = tok.access_token;
  result.refreshed = (await oauth.processRefreshTokenResponse(as, pubClient,
    await oauth.refreshTokenGrantRequest(as, pubClient, none, tok.refresh_token,
      { ...o, additionalParameters: new URLSearchParams([['resource', a]]) }))).access_token;
}
out({ result });
