// OpenID Connect against a Rescind server with openid-client v6 in OIDC mode. Run by
// TestNodeOIDCInterop (cmd/rescind), which starts the server and passes ISSUER, CLIENT_ID,
// CLIENT_SECRET, REDIRECT_URI, POST_LOGOUT_REDIRECT_URI and ID_TOKEN_ALG.
//
// It speaks JSON lines on stdout: {"authorize": URL}, then it reads the redirect (callback) URL
// on stdin, and prints {"result": {...}}: the ID token's claims (validated by openid-client:
// signature, iss, aud, exp, iat, nonce), the userinfo response and the end-session URL.
import * as readline from 'node:readline';
import * as client from 'openid-client';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const readLine = async () => {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed');
  return value.trim();
};

const config = await client.discovery(new URL(env('ISSUER')), env('CLIENT_ID'),
  { id_token_signed_response_alg: env('ID_TOKEN_ALG') }, client.ClientSecretBasic(env('CLIENT_SECRET')),
  { execute: [client.allowInsecureRequests] });
const verifier = client.randomPKCECodeVerifier();
const nonce = client.randomNonce();
const state = client.randomState();
const authURL = client.buildAuthorizationUrl(config, {
  redirect_uri: env('REDIRECT_URI'), scope: 'openid profile email', nonce, state,
  code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
});
out({ authorize: authURL.href });
const callback = new URL(await readLine());
const tokens = await client.authorizationCodeGrant(config, callback,
  { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true });
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
const endSession = client.buildEndSessionUrl(config, {
  id_token_hint: tokens.id_token, post_logout_redirect_uri: env('POST_LOGOUT_REDIRECT_URI'), state: 'bye',
});
out({ result: { claims, nonce, userinfo, end_session: endSession.href } });
