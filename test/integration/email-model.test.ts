import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { adminApi, newCommonId, READY_PASSWORD, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, type Page } from '../support/browser.ts';
import { enterCredentials } from '../support/flows.ts';
import { runCli } from '../support/processes.ts';
import { mailedCode } from '../support/smtp-sink.ts';

// One model of email addresses (issue 14, point 2): the university-registered address an operator
// set and the recovery address the person confirmed, each labelled, and where a password reset by
// email goes, the same on the account home, the security page, `akamon account show` and the admin API.

let akamon: RunningAkamon;

beforeAll(async () => {
  akamon = await startAkamon({ env: { AKAMON_TRUSTED_EMAIL_DOMAINS: 'u-tokyo.ac.jp' } });
});
afterAll(() => akamon.close());

const cli = (args: string[]) => runCli({ url: akamon.url, token: akamon.operatorToken }, args);

/** `akamon account create --email` as an operator runs it, then the person's own password in place of the initial one. */
async function createWithEmail(email: string): Promise<{ commonId: string; id: string }> {
  const commonId = newCommonId();
  const created = await cli(['account', 'create', '--id', commonId, '--name', 'Hanako Todai', '--affiliation', 'student', '--email', email, '--json']);
  expect(created.code).toBe(0);
  const { initialPassword } = JSON.parse(created.stdout) as { initialPassword: string };
  const account = (await akamon.deps.accounts.findByCommonId(commonId))!;
  expect(account.email).toBe(email);
  await akamon.deps.accountService.changePassword(account.id, initialPassword, READY_PASSWORD, READY_PASSWORD);
  return { commonId, id: account.id };
}

/** The labelled lines of a page's email list, tags removed: {label: text}. */
function emailLines(page: Page): Record<string, string> {
  const list = /<h2[^>]*>(?:Email addresses|メールアドレス)<\/h2>\s*<dl class="details-list">([\s\S]*?)<\/dl>/.exec(page.html);
  expect(list).not.toBeNull();
  const lines: Record<string, string> = {};
  for (const [, label, value] of list![1].matchAll(/<dt>([^<]*)<\/dt>\s*<dd>([\s\S]*?)<\/dd>/g)) {
    lines[label] = value
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
  }
  return lines;
}

/** The account home and the security page of a signed-in browser. */
async function pages(commonId: string, language = 'en'): Promise<{ browser: Browser; home: Page; security: Page }> {
  const browser = new Browser(akamon.url);
  browser.acceptLanguage = language;
  const home = await enterCredentials(browser, await browser.visit(`${akamon.url}/account`), commonId, READY_PASSWORD);
  expect(new URL(home.url).pathname).toBe('/account');
  const security = await browser.visit(`${akamon.url}/account/security`);
  expect(security.status).toBe(200);
  return { browser, home, security };
}

async function shown(commonId: string): Promise<{ text: string; json: Record<string, any> }> {
  const text = await cli(['account', 'show', commonId]);
  expect(text.code).toBe(0);
  const json = await cli(['account', 'show', commonId, '--json']);
  expect(json.code).toBe(0);
  return { text: text.stdout, json: JSON.parse(json.stdout) };
}

describe('the university-registered address', () => {
  test('in a trusted domain: shown under its label, and a reset by email goes to it', async () => {
    const email = `hanako.${Date.now()}@g.ecc.u-tokyo.ac.jp`;
    const { commonId } = await createWithEmail(email);
    const { home, security } = await pages(commonId);
    for (const page of [home, security]) {
      expect(emailLines(page)).toEqual({
        'University-registered email': `${email} Registered by the university from its student or staff records. To change it, update it there: it cannot be changed on this page.`,
        'Recovery email': 'not registered',
        'Password reset by email': 'Possible: the code goes to your university-registered email, h****@g****.jp',
      });
    }

    const { text, json } = await shown(commonId);
    expect(text).toMatch(new RegExp(`^University email:\\s+${email.replaceAll('.', '\\.')}$`, 'm'));
    expect(text).toMatch(/^Recovery email:\s+-$/m);
    expect(text).toMatch(/^Password reset by email:\s+possible, to the university email$/m);
    expect(json).toMatchObject({ email, recoveryEmail: null, passwordResetByEmail: { possible: true, via: 'university_email', reason: null } });

    const api = await adminApi(akamon, 'GET', `/accounts/${commonId}`);
    expect(api.status).toBe(200);
    expect(api.body).toMatchObject({ email, recoveryEmail: null, passwordResetByEmail: { possible: true, via: 'university_email', reason: null } });
    // Every answer that carries an account carries the model, the list included.
    const listed = await adminApi(akamon, 'GET', '/accounts?limit=1000');
    expect(listed.body.accounts.find((a: { commonId: string }) => a.commonId === commonId)).toMatchObject({ email, passwordResetByEmail: { possible: true, via: 'university_email' } });
  });

  test('outside the trusted domains: shown, but a reset is not possible, and the home page leads to adding a recovery email', async () => {
    const email = `taro.${Date.now()}@gmail.com`;
    const { commonId } = await createWithEmail(email);
    const { home, security } = await pages(commonId);
    expect(emailLines(home)).toMatchObject({
      'University-registered email': expect.stringContaining(email),
      'Recovery email': 'not registered',
      'Password reset by email': 'Not possible: your university-registered email cannot be used for password resets. Add a recovery email',
    });
    expect(home.html).toContain('<a href="/account/security#email">Add a recovery email</a>');
    // The security page has the form right below, under the heading the link leads to.
    expect(emailLines(security)['Password reset by email']).toBe('Not possible: your university-registered email cannot be used for password resets.');
    expect(security.html).toMatch(/<h2 id="email">Email addresses<\/h2>/);

    const { text, json } = await shown(commonId);
    expect(text).toMatch(/^Password reset by email:\s+not possible: the university email is outside AKAMON_TRUSTED_EMAIL_DOMAINS$/m);
    expect(json.passwordResetByEmail).toEqual({ possible: false, via: null, reason: 'university_email_untrusted' });
    const api = await adminApi(akamon, 'GET', `/accounts/${commonId}`);
    expect(api.body.passwordResetByEmail).toEqual({ possible: false, via: null, reason: 'university_email_untrusted' });
  });

  test('in Japanese, each address under its own label', async () => {
    const { commonId } = await createWithEmail(`jiro.${Date.now()}@u-tokyo.ac.jp`);
    const { home } = await pages(commonId, 'ja');
    expect(emailLines(home)).toEqual({
      大学に登録されたメールアドレス: expect.stringContaining('@u-tokyo.ac.jp'),
      回復用メールアドレス: '未登録',
      メールによるパスワードのリセット: '利用できます。確認コードは大学に登録されたメールアドレス(j****@u****.jp)に届きます。',
    });
  });
});

describe('the recovery address', () => {
  test('once confirmed on the security page it is shown under its own label and is the one a reset uses', async () => {
    const university = `saburo.${Date.now()}@u-tokyo.ac.jp`;
    const { commonId, id } = await createWithEmail(university);
    const { browser, security } = await pages(commonId);
    const recovery = `n${Date.now()}@example.com`;
    const sent = await browser.submit(security, /\/account\/security\/email$/, { email: recovery });
    expect(sent.status).toBe(200);
    // Sent, not yet confirmed: nothing changes.
    expect(emailLines(sent)['Recovery email']).toBe('not registered');
    const confirmed = await browser.submit(sent, /\/email\/confirm$/, { code: mailedCode(akamon.mails, recovery) });
    expect(confirmed.html).toContain('Your recovery email was changed.');
    expect((await akamon.deps.accounts.findById(id))!.recovery_email).toBe(recovery);

    const afterwards = {
      'University-registered email': expect.stringContaining(university),
      'Recovery email': recovery,
      'Password reset by email': 'Possible: the code goes to your recovery email, n****@e****.com',
    };
    expect(emailLines(confirmed)).toEqual(afterwards);
    expect(emailLines(await browser.visit(`${akamon.url}/account`))).toEqual(afterwards);

    const { text, json } = await shown(commonId);
    expect(text).toMatch(new RegExp(`^University email:\\s+${university.replaceAll('.', '\\.')}$`, 'm'));
    expect(text).toMatch(new RegExp(`^Recovery email:\\s+${recovery.replaceAll('.', '\\.')}$`, 'm'));
    expect(text).toMatch(/^Password reset by email:\s+possible, to the recovery email$/m);
    expect(json).toMatchObject({ email: university, recoveryEmail: recovery, passwordResetByEmail: { possible: true, via: 'recovery_email', reason: null } });
    const api = await adminApi(akamon, 'GET', `/accounts/${commonId}`);
    expect(api.body).toMatchObject({ email: university, recoveryEmail: recovery, passwordResetByEmail: { possible: true, via: 'recovery_email', reason: null } });
  });

  test('without any address, or with an unverified one: not possible, and the reason said', async () => {
    const commonId = newCommonId();
    const created = await cli(['account', 'create', '--id', commonId, '--name', 'Shiro Todai', '--affiliation', 'staff', '--json']);
    expect(created.code).toBe(0);
    const { json, text } = await shown(commonId);
    expect(json).toMatchObject({ email: null, recoveryEmail: null, passwordResetByEmail: { possible: false, via: null, reason: 'no_email' } });
    expect(text).toMatch(/^University email:\s+-$/m);
    expect(text).toMatch(/^Password reset by email:\s+not possible: no email address is registered$/m);

    // In a trusted domain, but entered by the person and checked by nobody: not used either.
    const unchecked = newCommonId();
    const made = await cli(['account', 'create', '--id', unchecked, '--name', 'Goro Todai', '--affiliation', 'staff', '--email', 'goro@u-tokyo.ac.jp', '--no-email-verified', '--json']);
    expect(made.code).toBe(0);
    const second = await shown(unchecked);
    expect(second.json.passwordResetByEmail).toEqual({ possible: false, via: null, reason: 'university_email_unverified' });
    expect(second.text).toMatch(/^Password reset by email:\s+not possible: the university email is not verified \(account update --email-verified\)$/m);
  });
});
