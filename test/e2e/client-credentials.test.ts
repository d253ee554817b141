import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as client from 'openid-client';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { tokenRequest } from '../support/flows.ts';

// Back-end services that call each other get access tokens for themselves (RFC 6749 4.4), through
// a real client library, and only when registered for it.

let akamon: RunningAkamon;
let service: Awaited<ReturnType<RunningAkamon['createClient']>>;
let website: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  akamon = await startAkamon();
  service = await akamon.createClient({ name: 'Timetable API', clientCredentials: true, redirectUris: ['http://127.0.0.1:9/timetable'] });
  website = await akamon.createClient({ name: 'Portal', redirectUris: ['http://127.0.0.1:9/portal'] });
});
afterAll(() => akamon.close());

const discover = (rp: { clientId: string; clientSecret: string | null }) =>
  client.discovery(new URL(akamon.url), rp.clientId, undefined, client.ClientSecretBasic(rp.clientSecret!), { execute: [client.allowInsecureRequests] });

describe('the client-credentials grant', () => {
  test('a registered service gets an access token that introspects as its own, with no person behind it', async () => {
    const config = await discover(service);
    expect(config.serverMetadata().grant_types_supported).toContain('client_credentials');
    const tokens = await client.clientCredentialsGrant(config);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.access_token).toMatch(/^[\w-]{20,}$/);
    expect(tokens.refresh_token).toBeUndefined();
    expect(tokens.id_token).toBeUndefined();

    const introspected = await client.tokenIntrospection(config, tokens.access_token);
    expect(introspected).toMatchObject({ active: true, client_id: service.clientId, token_type: 'Bearer' });
    expect(introspected.sub).toBeUndefined();
    const row = await akamon.deps.database.db.selectFrom('oidc_payload').select(['model', 'account_id']).where('model', '=', 'ClientCredentials').executeTakeFirst();
    expect(row).toEqual({ model: 'ClientCredentials', account_id: null });

    // Userinfo describes a person; a service's own token has none.
    const userinfo = await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(userinfo.status).toBe(401);
  });

  test('a client not registered for it is refused, and a wrong secret is refused', async () => {
    const refused = await tokenRequest(akamon, website, { grant_type: 'client_credentials' });
    expect(refused.status).toBe(400);
    // oidc-provider answers invalid_request here, with a description that says why.
    expect(refused.body).toEqual({ error: 'invalid_request', error_description: 'requested grant type is not allowed for this client' });
    const wrongSecret = await tokenRequest(akamon, { clientId: service.clientId, clientSecret: 'not-the-secret' }, { grant_type: 'client_credentials' });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body.error).toBe('invalid_client');
  });

  test('a public client cannot be registered for it; turning it off takes effect', async () => {
    await expect(akamon.createClient({ name: 'SPA', public: true, clientCredentials: true, redirectUris: ['http://127.0.0.1:9/spa'] })).rejects.toThrow(/public client/);
    const other = await akamon.createClient({ name: 'Batch job', clientCredentials: true, redirectUris: ['http://127.0.0.1:9/batch'] });
    expect((await tokenRequest(akamon, other, { grant_type: 'client_credentials' })).status).toBe(200);
    const changed = await fetch(`${akamon.url}/admin/api/clients/${other.clientId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${akamon.operatorToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ clientCredentials: false }),
    });
    expect(changed.status).toBe(200);
    expect(((await changed.json()) as { client: { clientCredentials: boolean } }).client.clientCredentials).toBe(false);
    expect((await tokenRequest(akamon, other, { grant_type: 'client_credentials' })).body.error_description).toBe('requested grant type is not allowed for this client');
  });
});
