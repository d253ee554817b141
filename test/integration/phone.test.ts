import http from 'node:http';
import { createHmac } from 'node:crypto';
import { generate } from 'otplib';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, type Page } from '../support/browser.ts';
import { chooseMethod, codeFrom, enterCredentials, finishEnrolment, redeem, startAuthorization } from '../support/flows.ts';

// A local SMS/voice gateway: the signed webhook Akamon posts to. It checks the signature and keeps
// the messages, so the tests read codes the way a phone would, not from inside Akamon.
const SECRET = 'gateway-secret-0123456789-abcdefghijklmnop';
const received: Array<{ to: string; channel: string; text: string }> = [];
let failNext = 0;
let gateway: http.Server;
let akamon: RunningAkamon;
let vpn: Awaited<ReturnType<RunningAkamon['createClient']>>;

beforeAll(async () => {
  gateway = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const expected = `sha256=${createHmac('sha256', SECRET).update(`${req.headers['x-akamon-timestamp']}.${body}`).digest('hex')}`;
      if (req.headers['x-akamon-signature'] !== expected) {
        res.statusCode = 401;
        res.end();
        return;
      }
      if (failNext > 0) {
        failNext -= 1;
        res.statusCode = 500;
        res.end();
        return;
      }
      received.push(JSON.parse(body));
      res.end('{}');
    });
  });
  await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
  const port = (gateway.address() as AddressInfo).port;
  akamon = await startAkamon({ env: { AKAMON_PHONE_GATEWAY: 'webhook', AKAMON_PHONE_WEBHOOK_URL: `http://127.0.0.1:${port}/sms`, AKAMON_PHONE_WEBHOOK_SECRET: SECRET } });
  vpn = await akamon.createClient({ name: 'UTokyo Slack', requireMfa: true, redirectUris: ['http://127.0.0.1:9/slack'] });
});
afterAll(async () => {
  await akamon.close();
  await new Promise((r) => gateway.close(r));
});

const lastCode = () => /(\d) (\d) (\d) (\d) (\d) (\d)/.exec(received.at(-1)!.text)!.slice(1).join('');
const claimsOf = (idToken: string) => JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());

let numbers = 0;
/** A number of its own per enrolment: sending is limited per number too. */
const newNumber = () => `090-1234-${String(5000 + ++numbers).padStart(4, '0')}`;

async function enrolPhone(channel: 'sms' | 'voice' = 'sms', number = newNumber()) {
  const account = await akamon.createReadyAccount();
  const last4 = number.slice(-4);
  const browser = new Browser(akamon.url);
  const started = await startAuthorization(browser, akamon, vpn);
  const enroll = await chooseMethod(browser, await enterCredentials(browser, started.page, account.commonId, account.password), 'phone');
  expect(enroll.html).toContain('This is the weakest method');
  // The country code is chosen apart from the number, Japan first by default.
  expect(enroll.html).toMatch(/<option value="81" selected>Japan \(\+81\)<\/option>/);
  const sent = await browser.submit(enroll, /\/phone_send$/, { phone: number, channel });
  expect(sent.html).toContain(`was sent to •••• ${last4}`);
  expect(received.at(-1)).toMatchObject({ to: `+81${number.replace(/-/g, '').slice(1)}`, channel });
  const done = await finishEnrolment(browser, akamon, await browser.submit(sent, /\/phone_confirm$/, { code: lastCode() }));
  const tokens = await redeem(akamon, vpn, codeFrom(done), started.verifier);
  return { account, claims: claimsOf(tokens.body.id_token) };
}

async function atVerifyPage(account: { commonId: string; password: string }): Promise<{ browser: Browser; page: Page; verifier: string }> {
  const browser = new Browser(akamon.url);
  const started = await startAuthorization(browser, akamon, vpn);
  const page = await enterCredentials(browser, started.page, account.commonId, account.password);
  expect(page.html).toContain('Verify your identity');
  return { browser, page, verifier: started.verifier };
}

describe('phone factor through a signed webhook gateway', () => {
  test('enrolment by SMS, then verification by a code sent to the registered number', async () => {
    const { account, claims } = await enrolPhone('sms', '090-8765-4321');
    expect(claims.amr).toEqual(['pwd', 'sms']);
    const [factor] = await akamon.deps.mfa.factors(account.id);
    expect(factor).toMatchObject({ kind: 'phone', label: 'SMS •••• 4321' });
    expect(factor.secret_enc).not.toContain('9087654321');

    const { browser, page, verifier } = await atVerifyPage(account);
    const sent = await browser.submit(page, /\/phone_send$/, {});
    expect(sent.html).toContain('was sent to SMS •••• 4321');
    const done = await browser.submit(sent, /\/phone$/, { code: lastCode() });
    expect(claimsOf((await redeem(akamon, vpn, codeFrom(done), verifier)).body.id_token).amr).toEqual(['pwd', 'sms']);
  });

  test('the default method comes first and the others under "other ways"', async () => {
    const { account } = await enrolPhone();
    const { secret, sealed } = akamon.deps.mfa.pendingTotp();
    expect((await akamon.deps.mfa.confirmTotp(account.id, sealed, await generate({ secret }), 'Authenticator app')).ok).toBe(true);
    const { browser, page } = await atVerifyPage(account);
    // One method at a time: the default (the phone, set up first), and the others offered by name.
    const [send, other, switchTo] = ['Send a code to', 'Other ways', 'Use Authenticator app instead'].map((text) => page.html.indexOf(text));
    expect(send).toBeGreaterThan(0);
    expect(other).toBeGreaterThan(send);
    expect(switchTo).toBeGreaterThan(other);
    expect(page.html).not.toContain('name="code"');
    expect(page.html).toContain('Get a 6-digit code on your phone');
    const app = await browser.submit(page, /\/use$/, { method: 'app' });
    expect(app.html).toContain('name="code"');
    expect(app.html).toContain('Use Phone (text message or call) instead');
    expect(app.html).not.toContain('Send a code to');
    // A method the account does not have is not offered and cannot be picked.
    const forged = await browser.submit(app, /\/use$/, { method: 'key' });
    expect(forged.html).toContain('name="code"');
    expect(forged.html).not.toContain('webauthn-options');
  });

  test('a voice call gives amr tel', async () => {
    const { claims } = await enrolPhone('voice');
    expect(claims.amr).toEqual(['pwd', 'tel']);
  });

  test('a code is single use, bound to its sign-in, and expires', async () => {
    const { account } = await enrolPhone();
    const a = await atVerifyPage(account);
    const sentA = await a.browser.submit(a.page, /\/phone_send$/, {});
    const codeA = lastCode();
    const b = await atVerifyPage(account);
    const sentB = await b.browser.submit(b.page, /\/phone_send$/, {});
    // A's code does not open B's sign-in.
    const crossed = await b.browser.submit(sentB, /\/phone$/, { code: codeA === lastCode() ? '000000' : codeA });
    expect(crossed.status).toBe(400);
    const done = await a.browser.submit(sentA, /\/phone$/, { code: codeA });
    expect(codeFrom(done)).toBeTruthy();
    // B's code, aged past ten minutes, no longer works.
    await akamon.deps.database.db
      .updateTable('otp_code')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('account_id', '=', account.id)
      .execute();
    const expired = await b.browser.submit(crossed, /\/phone$/, { code: lastCode() });
    expect(expired.html).toContain('has expired or was already used');
  });

  test('sending is rate-limited, and a failed delivery loses nothing', async () => {
    const { account } = await enrolPhone();
    const { browser, page } = await atVerifyPage(account);
    failNext = 1;
    const failed = await browser.submit(page, /\/phone_send$/, {});
    expect(failed.status).toBe(503);
    expect(failed.html).toContain('could not be sent just now');
    expect(await akamon.deps.database.db.selectFrom('otp_code').select('id').where('account_id', '=', account.id).where('consumed_at', 'is', null).execute()).toHaveLength(0);
    let last = failed;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      last = await browser.submit(last, /\/phone_send$/, {});
      statuses.push(last.status);
    }
    // Enrolment sent one code already: two more go out, the next waits.
    expect(statuses).toEqual([200, 200, 429]);
    expect(last.html).toContain('Too many codes were sent');
  });

  test('an enrolment code proves only the number it was sent to', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const enroll = await chooseMethod(browser, await enterCredentials(browser, started.page, account.commonId, account.password), 'phone');
    const first = await browser.submit(enroll, /\/phone_send$/, { phone: newNumber() });
    const firstCode = lastCode();
    // Once a code is sent the page asks for it alone, with a way back to another number.
    expect(first.html).not.toContain('name="phone"');
    const another = await browser.submit(first, /\/phone_change$/, {});
    const second = await browser.submit(another, /\/phone_send$/, { phone: newNumber() });
    // The pending number is now the second one: the first number's code does not confirm it.
    const refused = await browser.submit(second, /\/phone_confirm$/, { code: firstCode === lastCode() ? '000000' : firstCode });
    expect(refused.status).toBe(400);
    expect(await akamon.deps.mfa.factors(account.id)).toHaveLength(0);
  });

  test('a bad number is refused before anything is sent', async () => {
    const account = await akamon.createReadyAccount();
    const browser = new Browser(akamon.url);
    const started = await startAuthorization(browser, akamon, vpn);
    const enroll = await chooseMethod(browser, await enterCredentials(browser, started.page, account.commonId, account.password), 'phone');
    const count = received.length;
    for (const phone of ['12', '+0123456789', 'abc', '+81 90 1234 5678 9999 9999']) {
      const refused = await browser.submit(enroll, /\/phone_send$/, { phone });
      expect(refused.status).toBe(400);
      expect(refused.html).toContain('Enter a mobile phone number');
    }
    expect(received.length).toBe(count);
  });
});
