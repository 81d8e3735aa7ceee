// An AI agent authorizing itself the way the Model Context Protocol says, with the MCP
// TypeScript SDK's OAuth client (@modelcontextprotocol/sdk/client/auth.js), against a resource
// server protected by Rescind. Run by TestMCPAgent (cmd/rescind/agents_e2e_test.go), which
// passes:
//
//   RESOURCE_URL   the protected endpoint the agent calls (examples/resource-server's /photos)
//   REDIRECT_URI   the agent's redirect URI (loopback: a native agent)
//   TOKEN_FORMAT   optional: "jwt" asks, in the registration, for JWT access tokens (Rescind's
//                  token_format client metadata)
//   AUTH_METHOD    optional: the token_endpoint_auth_method the registration asks for (default
//                  none; the SDK's own example asks for client_secret_post)
//   CLIENT_METADATA_URL  optional: the agent is identified by this Client ID Metadata Document
//                  instead of registering (when the server says it supports them)
//
// Everything else the SDK discovers: the 401's WWW-Authenticate names the protected resource
// metadata (RFC 9728), which names the authorization server, whose metadata (RFC 8414) names
// the registration endpoint (RFC 7591); the agent registers, then runs the code flow with PKCE
// and the resource parameter (RFC 8707) the metadata gives. It speaks JSON lines on stdout:
// {"challenge": {...}} for the first 401; {"authorize": URL}, after which it reads the redirect
// (callback) URL on stdin; {"authorized": {...}} with its first call; then for each line "call"
// on stdin it calls the resource again and prints {"call": status}; "quit" ends it.
import * as readline from 'node:readline';
import { auth, extractWWWAuthenticateParams } from '@modelcontextprotocol/sdk/client/auth.js';

const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set`);
  return process.env[k];
};
const resourceURL = env('RESOURCE_URL');
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const readLine = async () => {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed');
  return value.trim();
};

// The agent's OAuth state, in memory: what a real agent would keep on disk.
class AgentProvider {
  constructor() {
    this.saved = {};
    if (process.env.CLIENT_METADATA_URL) this.clientMetadataUrl = process.env.CLIENT_METADATA_URL;
  }
  get redirectUrl() { return env('REDIRECT_URI'); }
  get clientMetadata() {
    const md = {
      client_name: 'MCP test agent',
      redirect_uris: [env('REDIRECT_URI')],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: process.env.AUTH_METHOD || 'none',
    };
    if (process.env.TOKEN_FORMAT) md.token_format = process.env.TOKEN_FORMAT;
    return md;
  }
  state() { return 'agent-state'; }
  clientInformation() { return this.saved.client; }
  saveClientInformation(c) { this.saved.client = c; }
  tokens() { return this.saved.tokens; }
  saveTokens(t) { this.saved.tokens = t; }
  redirectToAuthorization(u) { this.saved.authorizationURL = u.href; }
  saveCodeVerifier(v) { this.saved.verifier = v; }
  codeVerifier() { return this.saved.verifier; }
  saveDiscoveryState(s) { this.saved.discovery = s; }
  discoveryState() { return this.saved.discovery; }
}

const provider = new AgentProvider();
const call = () => fetch(resourceURL, provider.saved.tokens
  ? { headers: { authorization: `Bearer ${provider.saved.tokens.access_token}` } } : {});

// The first call: no token, a 401 that names the protected resource metadata.
const first = await call();
const challenge = extractWWWAuthenticateParams(first);
out({ challenge: { status: first.status, www: first.headers.get('www-authenticate'),
  resource_metadata: challenge.resourceMetadataUrl?.href, scope: challenge.scope } });
if (first.status !== 401 || !challenge.resourceMetadataUrl) throw new Error('no RFC 9728 challenge');

const opts = { serverUrl: resourceURL, resourceMetadataUrl: challenge.resourceMetadataUrl, scope: challenge.scope };
if ((await auth(provider, opts)) !== 'REDIRECT') throw new Error('the SDK did not ask for authorization');
out({ authorize: provider.saved.authorizationURL });
const callback = new URL(await readLine());
if (callback.searchParams.get('state') !== 'agent-state') throw new Error('state mismatch');
if ((await auth(provider, { ...opts, authorizationCode: callback.searchParams.get('code') })) !== 'AUTHORIZED') {
  throw new Error('the SDK did not get tokens');
}
const res = await call();
out({ authorized: { status: res.status, body: await res.json(), client_id: provider.saved.client.client_id,
  access_token: provider.saved.tokens.access_token, scope: provider.saved.tokens.scope,
  auth_method: provider.saved.client.token_endpoint_auth_method, has_secret: provider.saved.client.client_secret !== undefined,
  resource_metadata: provider.saved.discovery?.resourceMetadata, authorization_server: provider.saved.discovery?.authorizationServerUrl } });

for (;;) {
  const cmd = await readLine();
  if (cmd === 'quit') break;
  if (cmd !== 'call') throw new Error(`unknown command ${cmd}`);
  const r = await call();
  await r.body?.cancel();
  out({ call: r.status });
}
process.exit(0);
