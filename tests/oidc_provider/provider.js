// A local OpenID provider for the OIDC sign-in tests (tests/accounts/test_oidc.py).
//
// Configured by one JSON document in the OIDC_TEST_CONFIG environment variable:
//   { "port": 0, "clients": [{client_id, client_secret, redirect_uris}],
//     "accounts": {"<login>": {claims...}} }
// Listens on 127.0.0.1 (port 0: any free port) and prints "listening <issuer>" once ready.
// Sign-in and consent use oidc-provider's development interactions: a login form whose
// "login" field names the account (any password), then a consent form.
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OIDC_TEST_CONFIG || '{}');
const accounts = config.accounts || {};

const server = createServer();
server.listen(config.port || 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: (config.clients || []).map((client) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
      ...client,
    })),
    // Every client must send a PKCE challenge (S256 is the only method oidc-provider accepts).
    pkce: { required: () => true },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    features: { devInteractions: { enabled: true } },
    // The groups claim is also put in the ID token (as Okta and Entra ID can do).
    conformIdTokenClaims: false,
    findAccount(ctx, sub) {
      const claims = accounts[sub];
      if (!claims) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...claims }) };
    },
    cookies: { keys: ['tagsense-test-oidc-provider-cookie-key'] },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(`listening ${issuer}`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
