// The OpenID Connect anchor: the same flows on `oidc-provider` (a certified provider)
// in one Node process, its in-memory adapter on an unbounded Map (the stock one keeps
// the latest 1,000 records, and lost live grants under this load), an RS256 key,
// refresh tokens rotated on use as Wicket rotates them. Mints COUNT refresh tokens and one access token (each of its
// own grant, for one account), writes them as JSON to FILE, then serves.
//
//   node bench/anchors/oidc_provider.mjs PORT COUNT FILE
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(process.env.OIDC_ANCHOR_MODULES ?? import.meta.url);
const { default: Provider } = await import(require.resolve('oidc-provider'));
const { default: MemoryAdapter } = await import(
  require.resolve('oidc-provider/lib/adapters/memory_adapter.js')
);
const store = new Map(); // set(key, value, options) ignores the options: no eviction

const [port, count] = process.argv.slice(2, 4).map(Number);
const file = process.argv[4];
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'RS256', use: 'sig', kid: 'anchor' };
const scope = 'openid profile offline_access';
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret-bench-secret-bench-secret',
    redirect_uris: ['http://127.0.0.1:9/cb'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }],
  jwks: { keys: [jwk] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, preferred_username: 'member' }),
  }),
  claims: { openid: ['sub'], profile: ['preferred_username'] },
  scopes: ['openid', 'profile', 'offline_access'],
  rotateRefreshToken: true,
  // Wicket's lifetimes: access tokens 10 minutes, ID tokens an hour.
  ttl: { AccessToken: 600, IdToken: 3600, RefreshToken: 30 * 86400, Grant: 30 * 86400 },
  issueRefreshToken: async () => true,
  features: { devInteractions: { enabled: false } },
  adapter: (model) => new MemoryAdapter(model, store),
});
provider.on('server_error', (ctx, err) => console.error(err));

const client = await provider.Client.find('bench');
const now = Math.floor(Date.now() / 1000);
async function grant() {
  const g = new provider.Grant({ accountId: 'member', clientId: 'bench' });
  g.addOIDCScope(scope);
  return g.save();
}
const refresh = [];
for (let i = 0; i < count; i++) {
  const grantId = await grant();
  const token = new provider.RefreshToken({
    accountId: 'member', client, grantId, scope, gty: 'authorization_code', authTime: now, iiat: now, rotations: 0,
  });
  refresh.push(await token.save());
}
const access = await new provider.AccessToken({
  accountId: 'member', client, grantId: await grant(), scope: 'openid profile',
}).save();
provider.listen(port, '127.0.0.1', () => {
  writeFileSync(file, JSON.stringify({ refresh, access }));
});
