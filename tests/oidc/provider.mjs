// A real OAuth 2.1 / OIDC authorization server (oidc-provider 8) on loopback,
// for sluice's OAuth tests: `node provider.mjs <config.json>`; see
// tests/support/src/oidc.rs, which writes the config and starts this.
//
// Each start generates a new signing key (a restart on the same port is how
// the tests rotate keys), writes it to `keys_file` so tests can forge tokens
// with it, then prints `READY <issuer>` as its only line on stdout.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

// oidc-provider prints its notices with console.info, i.e. to stdout, which
// is reserved for the READY line: send everything but that to stderr.
console.log = console.info = console.error;
// Its in-memory store loses everything at a restart: here that is the point
// (a restart is a key rotation), so its warning about that is only noise.
const { warn } = console;
console.warn = (msg, ...rest) => {
  // Likewise its development login pages, which the interactive tests need.
  const text = String(msg);
  if (!text.includes('development-only in-memory adapter')
      && !text.includes('devInteractions is enabled')) warn(msg, ...rest);
};

const { default: Provider, errors } = await import('oidc-provider');

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const alg = config.alg ?? 'ES256';
const ttl = config.ttl ?? 300;
const scopes = config.scopes ?? [];
// `jwt` (the default), or `opaque`: tokens only the provider can read,
// which a resource server checks by introspection.
const format = config.format ?? 'jwt';

const { privateKey, publicKey } = alg === 'RS256'
  ? generateKeyPairSync('rsa', { modulusLength: 2048 })
  : alg === 'ES256'
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : (() => { throw new Error(`unsupported alg ${alg}`); })();
const kid = randomUUID();
const jwk = (key) => ({ ...key.export({ format: 'jwk' }), kid, alg, use: 'sig' });
writeFileSync(config.keys_file, JSON.stringify({
  kid,
  alg,
  private_pem: privateKey.export({ format: 'pem', type: 'pkcs8' }),
  public_jwk: jwk(publicKey),
}));

// The issuer holds the port, so bind first and hand requests to the
// provider once it exists (nothing connects before READY is printed).
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const clientClaims = new Map(config.clients.map((c) => [c.client_id, c.claims ?? {}]));
// People who sign in at the development login page (any password), with the
// extra claims of their access tokens. With any, the provider also takes
// the authorization-code grant and dynamic client registration, as an MCP
// host uses them.
const accounts = config.accounts ?? {};
const interactive = Object.keys(accounts).length > 0;

const provider = new Provider(issuer, {
  jwks: { keys: [jwk(privateKey)] },
  clients: config.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    // The Rust side sends the secret in the form body.
    token_endpoint_auth_method: 'client_secret_post',
  })),
  // Else every client is invalid_client_metadata with an ES256 key: the
  // default id_token_signed_response_alg, RS256, needs an RSA key.
  clientDefaults: { id_token_signed_response_alg: alg },
  // The resource server's scopes are scopes clients may register for.
  scopes: ['openid', 'offline_access', ...scopes],
  // Random cookie keys: no cookies matter here, but the default warns.
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    // Login and consent pages only for the interactive tests.
    devInteractions: { enabled: interactive },
    registration: { enabled: interactive },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A token request without `resource` is for the one resource server.
      defaultResource: () => config.resource,
      // An authorization code's token is for the resource it was granted.
      useGrantedResource: () => true,
      // Only the configured resource exists; any other is refused with
      // invalid_target. Requested scopes that are not in `scope` are
      // DROPPED, not refused (oidc-provider's client-credentials grant
      // filters them; the answer's `scope` says what was granted), and a
      // request with none of them gets a token without a `scope` claim.
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== config.resource) throw new errors.InvalidTarget();
        return {
          scope: scopes.join(' '),
          accessTokenTTL: ttl,
          accessTokenFormat: format,
          jwt: { sign: { alg } },
        };
      },
    },
  },
  // Copied into the token, under the standard claims (which win a clash).
  extraTokenClaims: (ctx, token) =>
    (token.accountId ? accounts[token.accountId] : clientClaims.get(token.clientId)) ?? {},
  // Set, so the provider does not warn that its defaults are in use.
  ttl: { ClientCredentials: ttl, Interaction: 600, Session: 600, Grant: 600 },
});

server.on('request', provider.callback());
// Errors a client caused are answered to it; log them for the test output.
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_description ?? ''));

process.stdout.write(`READY ${issuer}\n`);
