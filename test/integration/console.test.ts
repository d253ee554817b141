import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, decode, type Page } from '../support/browser.ts';
import { consoleOperator } from '../support/console-operator.ts';
import { refuseWrites } from '../support/faults.ts';
import { enterCredentials } from '../support/flows.ts';
import { SoftwareAuthenticator, webauthnOptions } from '../support/webauthn.ts';
import type { Role, Scope } from '../../src/operator/permissions.ts';
import { translator } from '../../src/i18n/i18n.ts';

/**
 * The operators' console over real HTTP: its sign-in (a security key or passkey, a role), the help
 * desk's pages and actions through HelpDesk (rows, audit records with the operator and the reason),
 * the scope (an account outside it is the same 404 as none), CSRF and the fresh-factor step-up.
 */
const clock = {
  offsetMs: 0,
  now() {
    return new Date(Date.now() + this.offsetMs);
  },
};
let akamon: RunningAkamon;
const REALM = 'utac.u-tokyo.ac.jp';

beforeAll(async () => {
  akamon = await startAkamon({ clock, shippedRealm: true });
});
afterAll(() => akamon.close());

type Person = { id: string; commonId: string; password: string };

async function withKey(person: Person): Promise<SoftwareAuthenticator> {
  const authenticator = new SoftwareAuthenticator(akamon.url);
  const row = (await akamon.deps.accounts.findById(person.id))!;
  const options = await akamon.deps.mfa.webauthnRegistrationOptions(row);
  const outcome = await akamon.deps.mfa.confirmWebauthn(person.id, authenticator.register(options as { challenge: string; rp: { id: string } }), options.challenge, 'Desk key');
  expect(outcome.ok).toBe(true);
  return authenticator;
}

async function withTotp(person: Person): Promise<string> {
  const { secret, sealed } = akamon.deps.mfa.pendingTotp();
  const { generate } = await import('otplib');
  expect((await akamon.deps.mfa.confirmTotp(person.id, sealed, await generate({ secret }), 'Phone app')).ok).toBe(true);
  return secret;
}

async function operator(role: Role, scope: Scope | null, profile: Record<string, unknown> = { department: 'eng' }) {
  const person = await akamon.createReadyAccount({ name: `Operator ${role}`, profile });
  await akamon.deps.operators.grant(person.id, role, scope, 'test');
  return person;
}

/** Password, then the security key; returns the page the console sent the browser back to. */
async function signInWithKey(browser: Browser, person: Person, authenticator: SoftwareAuthenticator, path = '/console'): Promise<Page> {
  const login = await browser.visit(path);
  const challenge = /name="password"|name="identifier"/.test(login.html) ? await enterCredentials(browser, login, person.commonId, person.password) : login;
  expect(challenge.html).toContain('webauthn-options');
  return useKey(browser, challenge, authenticator);
}

function useKey(browser: Browser, challenge: Page, authenticator: SoftwareAuthenticator): Promise<Page> {
  const options = webauthnOptions<{ challenge: string; rpId: string }>(challenge.html);
  return browser.submit(challenge, /\/webauthn$/, { credential: authenticator.assert(options) });
}

async function auditOf(accountId: string, action: string) {
  return (await akamon.deps.audit.list({ accountId, limit: 50 })).filter((a) => a.action === action);
}

describe('who gets in', () => {
  test('a person without a console role gets the plain 404 page, also with a security key', async () => {
    const person = await akamon.createReadyAccount();
    const key = await withKey(person);
    const browser = new Browser(akamon.url);
    const page = await signInWithKey(browser, person, key);
    expect(page.status).toBe(404);
    expect(page.html).toContain('This page does not exist.');
    expect((await browser.visit('/console')).url).not.toMatch(/\/console$/);
  });

  test('an operator who signed in with the authenticator app only is refused: the key page, with the way to add one', async () => {
    const person = await operator('office', { departments: ['eng'], affiliations: [] });
    const secret = await withTotp(person);
    const browser = new Browser(akamon.url);
    const challenge = await enterCredentials(browser, await browser.visit('/console'), person.commonId, person.password);
    const { generate } = await import('otplib');
    // The enrolment used the current time step's code: the previous one is still free.
    const page = await browser.submit(challenge, /\/totp$/, { code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) - 30 }) });
    expect(page.status).toBe(403);
    expect(page.html).toContain('The console needs a security key or passkey');
    expect(page.html).toContain('href="/account/security"');
    // No console session was made.
    const again = await browser.visit('/console');
    expect(again.html).not.toContain('Find an account');
  });

  test('with both an app and a key, the sign-in asks for the key only, and a session that showed the app is asked again', async () => {
    const person = await operator('office', { departments: ['eng'], affiliations: [] });
    const secret = await withTotp(person);
    const key = await withKey(person);
    const browser = new Browser(akamon.url);
    // The account home first, with the app (its default method).
    const home = await enterCredentials(browser, await browser.visit('/account/login?fresh=1'), person.commonId, person.password);
    const { generate } = await import('otplib');
    expect(home.html).toContain('name="code"');
    expect(home.html).not.toContain('webauthn-options');
    await browser.submit(home, /\/totp$/, { code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) - 30 }) });
    // Then the console, in the same browser: the key is asked for, and the app is not offered.
    const console = await browser.visit('/console');
    const challenge = /name="password"/.test(console.html) ? await browser.submit(console, /\/password$/, { password: person.password }) : console;
    expect(challenge.html).toContain('webauthn-options');
    expect(challenge.html).not.toContain('name="code"');
    const signedIn = await useKey(browser, challenge, key);
    expect(signedIn.status).toBe(200);
    expect(signedIn.html).toContain('Find an account');
  });
});

describe('help desk as an office operator of eng', () => {
  let browser: Browser;
  let desk: Person;
  let key: SoftwareAuthenticator;
  let student: Person;
  let outsider: Person;

  beforeAll(async () => {
    desk = await operator('office', { departments: ['eng'], affiliations: [] });
    key = await withKey(desk);
    student = await akamon.createReadyAccount({ name: 'Hanako Kogaku', affiliation: 'student', profile: { department: 'eng/mech' } });
    outsider = await akamon.createReadyAccount({ name: 'Taro Rigaku', affiliation: 'student', profile: { department: 'sci' } });
    browser = new Browser(akamon.url);
    expect((await signInWithKey(browser, desk, key)).html).toContain('Find an account');
  });

  test('finds an account by Common ID, by the realm-suffixed form and by a part of the name; never one outside the scope', async () => {
    for (const q of [student.commonId, `${student.commonId}@${REALM}`, 'Kogaku']) {
      const page = await browser.visit(`/console?q=${encodeURIComponent(q)}`);
      expect(page.html).toContain(`href="/console/accounts/${student.commonId}"`);
      // Never cached, never framed, no script but the page's own.
      expect(page.headers.get('cache-control')).toBe('no-store');
      expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'nonce-[^']+'.*frame-ancestors 'none'/);
    }
    for (const q of [outsider.commonId, 'Rigaku']) {
      const page = await browser.visit(`/console?q=${encodeURIComponent(q)}`);
      expect(page.html).not.toContain(`/console/accounts/${outsider.commonId}`);
      expect(page.html).toContain('No account you manage matches.');
    }
  });

  test('the account page shows status, methods, addresses, education, expiry and recent sign-ins with reasons', async () => {
    await akamon.deps.signinLog.record({ accountId: student.id, clientId: null, ip: '10.0.0.7', userAgent: null, result: 'failure', reason: 'wrong_password' });
    const page = await browser.visit(`/console/accounts/${student.commonId}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain('Hanako Kogaku');
    expect(page.html).toContain(`${student.commonId}@${REALM}`);
    expect(page.html).toContain('Active');
    expect(page.html).toContain('Password expires');
    expect(page.html).toContain('Not taken yet');
    expect(page.html).toContain('Recovery');
    expect(page.html).toContain('Wrong password');
  });

  test('an account outside the scope is the same 404 page as one that does not exist, for pages and actions', async () => {
    const outside = await browser.visit(`/console/accounts/${outsider.commonId}`);
    const missing = await browser.visit('/console/accounts/0999999999');
    expect(outside.status).toBe(404);
    expect(missing.status).toBe(404);
    // The same page but for the request's own path (the language switch's way back) and reference.
    const strip = (html: string, path: string) => html.replace(/Reference: [^<]+/, '').replaceAll(encodeURIComponent(path), '');
    expect(strip(outside.html, `/console/accounts/${outsider.commonId}`)).toBe(strip(missing.html, '/console/accounts/0999999999'));
    const page = await browser.visit(`/console/accounts/${student.commonId}`);
    const refused = await browser.submit(page, /\/unlock$/, {}).then(() => browser.visit(`/console/accounts/${outsider.commonId}/suspend`));
    expect(refused.status).toBe(404);
    const form = browser.form(page, /\/unlock$/, {});
    const posted = await browser.visit(form.url.replace(student.commonId, outsider.commonId), { method: 'POST', body: form.body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(posted.status).toBe(404);
    expect(await auditOf(outsider.id, 'account.unlocked')).toHaveLength(0);
  });

  test('unlock, lend and collect a token, with audit records naming the operator', async () => {
    const actor = `console:${desk.commonId}`;
    let page = await browser.visit(`/console/accounts/${student.commonId}`);
    page = await browser.submit(page, /\/unlock$/, {});
    expect(page.html).toContain('Sign-in was unlocked.');
    expect((await auditOf(student.id, 'account.unlocked'))[0].actor).toBe(actor);

    const serial = `SN${student.commonId}`;
    await akamon.deps.tokens.add({ serial, secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', digits: 6, period: 30 });
    page = await browser.submit(page, /\/lend$/, { serial });
    expect(page.html).toContain('The hardware token was lent to this account.');
    expect((await akamon.deps.mfa.factors(student.id)).some((f) => f.kind === 'token' && f.token_serial === serial)).toBe(true);
    expect((await auditOf(student.id, 'token.lent'))[0]).toMatchObject({ actor, details: { serial } });
    page = await browser.submit(page, /\/collect$/, {});
    expect(page.html).toContain('The hardware token was collected.');
    expect((await akamon.deps.mfa.factors(student.id)).some((f) => f.kind === 'token')).toBe(false);
  });

  test('a change the database cannot take just now: the console’s page says so with 503 and Retry-After, and nothing changed', async () => {
    const stop = await refuseWrites(akamon.deps.database.db, 'refuse_console_unlock', { table: 'audit_event', on: 'insert', when: "new.action = 'account.unlocked'" });
    try {
      const before = (await auditOf(student.id, 'account.unlocked')).length;
      const refused = await browser.submit(await browser.visit(`/console/accounts/${student.commonId}`), /\/unlock$/, {});
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect(refused.html).toContain('console-nav');
      expect((await auditOf(student.id, 'account.unlocked')).length).toBe(before);
    } finally {
      await stop();
    }
  });

  test('reissue: a reason and the document are required; then the letter with the new password, which works', async () => {
    const confirm = await browser.visit(`/console/accounts/${student.commonId}/reissue`);
    expect(confirm.html).toContain('Identity document checked');
    const missing = await browser.submit(confirm, /\/reissue$/, { reason: 'forgot', document: '' });
    expect(missing.status).toBe(400);
    expect(missing.html).toContain('Choose the identity document you checked.');
    const letter = await browser.submit(confirm, /\/reissue$/, { reason: 'forgot the password', document: 'student_card' });
    expect(letter.status).toBe(200);
    expect(letter.headers.get('cache-control')).toBe('no-store');
    expect(letter.headers.get('content-security-policy')).toMatch(/style-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
    expect(letter.html).toContain('letter__password');
    const password = [...letter.html.matchAll(/<span class="letter__pw-char">([^<]+)<\/span>/g)]
      .map((m) =>
        m[1]
          .replace(/&amp;/g, '&')
          .replace(/&lt;/g, '<')
          .replace(/&gt;/g, '>')
          .replace(/&quot;/g, '"')
          .replace(/&#39;/g, "'"),
      )
      .join('');
    expect(password.length).toBeGreaterThan(8);
    const signin = await akamon.deps.passwordSignin.signIn({ commonId: student.commonId, password, ip: '10.0.0.8', userAgent: null, clientId: null });
    expect(signin.ok).toBe(true);
    const [audit] = await auditOf(student.id, 'password.reissued');
    expect(audit).toMatchObject({ actor: `console:${desk.commonId}`, details: { checked: 'student_card', reason: 'forgot the password' } });

    // A reload of the letter sends the same form again, twice at once here: no second password, so the
    // letter already printed stays right.
    const again = await Promise.all([1, 2].map(() => browser.submit(confirm, /\/reissue$/, { reason: 'forgot the password', document: 'student_card' })));
    for (const page of again) {
      expect(page.status).toBe(200);
      expect(page.html).toContain('That reissue form had been sent already');
      expect(page.html).not.toContain('letter__password');
    }
    expect(await auditOf(student.id, 'password.reissued')).toHaveLength(1);
    expect((await akamon.deps.passwordSignin.signIn({ commonId: student.commonId, password, ip: '10.0.0.8', userAgent: null, clientId: null })).ok).toBe(true);
    // A new form is a new attempt.
    const next = await browser.visit(`/console/accounts/${student.commonId}/reissue`);
    expect((await browser.submit(next, /\/reissue$/, { reason: 'lost the letter', document: 'student_card' })).html).toContain('letter__password');
    expect(await auditOf(student.id, 'password.reissued')).toHaveLength(2);
  });

  test('suspend (with a reason) and reactivate', async () => {
    const confirm = await browser.visit(`/console/accounts/${student.commonId}/suspend`);
    const empty = await browser.submit(confirm, /\/suspend$/, { reason: '  ' });
    expect(empty.status).toBe(400);
    expect(empty.html).toContain('Enter the reason');
    expect((await akamon.deps.accounts.findById(student.id))!.status).toBe('active');
    const done = await browser.submit(confirm, /\/suspend$/, { reason: 'lost card reported' });
    expect(done.html).toContain('The account was suspended');
    expect((await akamon.deps.accounts.findById(student.id))!.status).toBe('suspended');
    expect((await auditOf(student.id, 'account.suspended'))[0]).toMatchObject({ actor: `console:${desk.commonId}`, details: { reason: 'lost card reported' } });
    const back = await browser.submit(done, /\/reactivate$/, {});
    expect(back.html).toContain('The account was reactivated.');
    expect((await akamon.deps.accounts.findById(student.id))!.status).toBe('active');
  });

  test('reset MFA removes the factors, with the reason in the audit', async () => {
    await withTotp(student);
    const confirm = await browser.visit(`/console/accounts/${student.commonId}/reset-mfa`);
    const done = await browser.submit(confirm, /\/reset-mfa$/, { reason: 'new phone' });
    expect(done.html).toContain('MFA was reset');
    expect(await akamon.deps.mfa.factors(student.id)).toHaveLength(0);
    expect((await auditOf(student.id, 'mfa.reset'))[0]).toMatchObject({ actor: `console:${desk.commonId}`, details: { reason: 'new phone' } });
  });

  test('schedule a revocation (date and reason) and cancel it', async () => {
    const confirm = await browser.visit(`/console/accounts/${student.commonId}/revoke`);
    const done = await browser.submit(confirm, /\/revoke$/, { on: '2099-03-31', reason: 'graduation' });
    expect(done.html).toContain('The revocation was scheduled.');
    const row = (await akamon.deps.accounts.findById(student.id))!;
    expect(row.revoke_at).not.toBeNull();
    expect(row.revoke_reason).toBe('graduation');
    expect((await auditOf(student.id, 'account.revocation_scheduled'))[0].actor).toBe(`console:${desk.commonId}`);
    const cancelled = await browser.submit(done, /\/cancel-revocation$/, {});
    expect(cancelled.html).toContain('The scheduled revocation was cancelled.');
    expect((await akamon.deps.accounts.findById(student.id))!.revoke_at).toBeNull();
  });

  test('a POST without the CSRF token is refused and changes nothing', async () => {
    const confirm = await browser.visit(`/console/accounts/${student.commonId}/suspend`);
    const refused = await browser.submit(confirm, /\/suspend$/, { reason: 'no token' }, { csrf: null });
    expect(refused.status).toBe(403);
    const forged = await browser.submit(confirm, /\/suspend$/, { reason: 'forged' }, { csrf: 'x'.repeat(43) });
    expect(forged.status).toBe(403);
    expect((await akamon.deps.accounts.findById(student.id))!.status).toBe('active');
  });

  test('a dangerous action with a key shown longer ago than CONSOLE_FRESH_SECONDS goes through a step-up, back to the confirmation', async () => {
    const path = `/console/accounts/${student.commonId}/suspend`;
    // Six minutes later (Akamon's clock; the provider keeps its own, so the step-up is then followed in real time).
    clock.offsetMs = 6 * 60 * 1000;
    let stale: Response;
    let posted: Response;
    try {
      stale = await browser.request(path);
      const confirm = await browser.visit(`/console/accounts/${student.commonId}`);
      const form = browser.form(confirm, /\/reactivate$|\/unlock$/, {});
      posted = await browser.request(`${akamon.url}${path}`, {
        method: 'POST',
        body: new URLSearchParams({ _csrf: form.body.get('_csrf')!, reason: 'stale' }),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
    } finally {
      clock.offsetMs = 0;
    }
    expect(stale.status).toBe(303);
    expect(stale.headers.get('location')).toBe(`/console/login?fresh=1&back=${encodeURIComponent(path)}`);
    // The POST too: nothing is done with a stale key, and the step-up comes back to the confirmation.
    expect(posted.status).toBe(303);
    expect(posted.headers.get('location')).toBe(`/console/login?fresh=1&back=${encodeURIComponent(path)}`);
    expect((await akamon.deps.accounts.findById(student.id))!.status).toBe('active');
    const back = await browser.visit(stale.headers.get('location')!);
    expect(new URL(back.url).pathname).toBe(path);
    expect(back.html).toContain('Suspend the account');
  });
});

describe('roles', () => {
  test('a help-desk reader sees the account but no action buttons, and an action posted anyway is refused', async () => {
    const reader = await operator('helpdesk', null);
    const key = await withKey(reader);
    const student = await akamon.createReadyAccount({ name: 'Read Only Target', profile: { department: 'eng' } });
    const browser = new Browser(akamon.url);
    await signInWithKey(browser, reader, key);
    const page = await browser.visit(`/console/accounts/${student.commonId}`);
    expect(page.status).toBe(200);
    expect(page.html).not.toContain('/unlock"');
    expect(page.html).not.toContain('/reissue"');
    const confirm = await browser.visit(`/console/accounts/${student.commonId}/suspend`);
    expect(confirm.status).toBe(403);
    expect(confirm.html).toContain('Your operator role does not allow this action.');
  });
});

describe("operators' own pages", () => {
  test('an administrator makes an API token (shown once), revokes it, and appoints and withdraws a person; others get the 404', async () => {
    const admin = await operator('admin', null);
    const key = await withKey(admin);
    const browser = new Browser(akamon.url);
    await signInWithKey(browser, admin, key);
    let page = await browser.visit('/console/operators');
    expect(page.status).toBe(200);

    page = await browser.submit(page, /\/operators\/tokens$/, { name: 'eng sync', role: 'office', departments: 'eng, sci/phys', affiliation_student: 'yes', days: '30' });
    const token = /<code>(akop_[A-Za-z0-9_-]+)<\/code>/.exec(page.html)![1];
    expect(await akamon.deps.operators.verify(token)).toEqual({ actor: 'operator:eng sync', role: 'office', scope: { departments: ['eng', 'sci/phys'], affiliations: ['student'] } });
    const [created] = (await akamon.deps.audit.list({ limit: 20 })).filter((a) => a.action === 'operator.token_created');
    expect(created.actor).toBe(`console:${admin.commonId}`);
    // Shown once: the list afterwards names it, without its secret.
    page = await browser.visit('/console/operators');
    expect(page.html).toContain('eng sync');
    expect(page.html).not.toContain(token);
    const bad = await browser.submit(page, /\/operators\/tokens$/, { name: 'x', role: 'office', departments: 'Not A Code!', days: '30' });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('is not a department code');

    const id = (await akamon.deps.operators.listTokens()).find((k) => k.name === 'eng sync')!.id;
    page = await browser.submit(page, new RegExp(`/operators/tokens/${id}/revoke$`), {});
    expect(page.html).toContain('The API token was revoked.');
    expect(await akamon.deps.operators.verify(token)).toBeUndefined();

    const person = await akamon.createReadyAccount({ profile: { department: 'eng' } });
    page = await browser.submit(page, /\/operators\/people$/, { commonId: person.commonId, role: 'helpdesk', departments: 'eng' });
    expect(page.html).toContain('The console role was given.');
    expect(await akamon.deps.operators.personPrincipal(person.id, person.commonId)).toEqual({
      actor: `console:${person.commonId}`,
      role: 'helpdesk',
      scope: { departments: ['eng'], affiliations: [] },
    });
    page = await browser.submit(page, new RegExp(`/operators/people/${person.commonId}/withdraw$`), {});
    expect(page.html).toContain('The console role was withdrawn.');
    expect(await akamon.deps.operators.personPrincipal(person.id, person.commonId)).toBeUndefined();

    const office = await operator('office', { departments: ['eng'], affiliations: [] });
    const officeKey = await withKey(office);
    const other = new Browser(akamon.url);
    await signInWithKey(other, office, officeKey);
    expect((await other.visit('/console/operators')).status).toBe(404);
  });
});

// The pages as a first-day operator uses them: nothing done twice on a reload, what was typed kept when
// a form is refused or a step-up intervenes, the message read first and in the page's language, and
// the language switch, the address bar and the sign-in leading back to the same page.

/** The value attribute of the input named `name` on the page ('' when it has none). */
function inputValue(page: Page, name: string): string {
  const tag = new RegExp(`<input[^>]*name="${name}"[^>]*>`).exec(page.html)?.[0] ?? '';
  return decode(/value="([^"]*)"/.exec(tag)?.[1] ?? '');
}

/** Where the page's language switch leads back to. */
function languageBack(page: Page): string {
  const href = decode(/class="lang-switch" href="([^"]+)"/.exec(page.html)?.[1] ?? '');
  return new URL(href, akamon.url).searchParams.get('back') ?? '';
}

/** The address the page puts in the browser's address bar (static/page-url.js), if any. */
function pageUrl(page: Page): string | undefined {
  return /data-url="([^"]+)"/.exec(page.html)?.[1];
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/**
 * Sends a form when the key was shown longer ago than CONSOLE_FRESH_SECONDS, then follows the step-up
 * it starts (Akamon's clock back to the sign-in's own time stands for the key shown again) to the page
 * it comes back to. None of `typed` is in the step-up's address.
 */
async function sentBeforeStepUp(browser: Browser, url: string, body: URLSearchParams | FormData, typed: readonly string[]): Promise<Page> {
  clock.offsetMs = 6 * 60 * 1000;
  let location: string;
  try {
    const answer = await browser.request(url, { method: 'POST', body, headers: body instanceof FormData ? {} : FORM });
    expect(answer.status).toBe(303);
    location = answer.headers.get('location')!;
  } finally {
    clock.offsetMs = 0;
  }
  expect(new URL(location, akamon.url).searchParams.get('fresh')).toBe('1');
  for (const value of typed) expect(decodeURIComponent(location)).not.toContain(value);
  const page = await browser.visit(location);
  expect(page.status).toBe(200);
  return page;
}

describe('operators page: forms as an administrator sends them', () => {
  let browser: Browser;

  beforeAll(async () => {
    ({ browser } = await consoleOperator(akamon, 'admin', null));
  });

  test('the new-token form sent again (a reload of the page showing the secret) makes no second token, and the page names its own address', async () => {
    const page = await browser.visit('/console/operators');
    const form = browser.form(page, /\/console\/operators\/tokens$/, { name: 'reload probe', role: 'auditor', days: '30' });
    const post = () => browser.request(form.url, { method: 'POST', body: form.body, headers: FORM });
    const first = await post();
    const html = await first.text();
    expect(first.status).toBe(200);
    expect(html).toContain('reload probe');
    expect(pageUrl({ html } as Page)).toBe('/console/operators');
    // The browser's reload of that answer sends the very same form again.
    const again = await post();
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe('/console/operators?done=token_used');
    expect((await akamon.deps.operators.listTokens()).filter((k) => k.name === 'reload probe')).toHaveLength(1);
  });

  test('a refused new-token form keeps everything typed, marks the field and leads the language switch back to the page', async () => {
    const page = await browser.visit('/console/operators');
    // A scope and "the whole university" both: refused, as the README says.
    const typed = { name: 'typed probe', role: 'helpdesk', departments: 'eng, sci/phys', whole_university: 'yes', affiliation_student: 'yes', days: '45' };
    const refused = await browser.submit(page, /\/console\/operators\/tokens$/, typed);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('Give departments or affiliations, or tick');
    expect(inputValue(refused, 'name')).toBe('typed probe');
    // The appointment form above it has a departments field too: this one is the token form's.
    expect(refused.html).toMatch(/<input[^>]*id="token-departments"[^>]*value="eng, sci\/phys"/);
    expect(inputValue(refused, 'days')).toBe('45');
    expect(refused.html).toMatch(/<input[^>]*id="token-aff-student"[^>]*checked/);
    expect(refused.html).toMatch(/<select[^>]*id="token-role"[^>]*>[\s\S]*?<option value="helpdesk" selected>/);
    expect(refused.html).toMatch(/<input[^>]*id="token-whole"[^>]*checked aria-invalid="true" aria-describedby="console-error token-whole-hint"/);
    expect((await akamon.deps.operators.listTokens()).filter((k) => k.name === 'typed probe')).toHaveLength(0);
    // The appointment form on the same page stays empty.
    expect(inputValue(refused, 'commonId')).toBe('');
    expect(languageBack(refused)).toBe('/console/operators');
  });

  test('a refused appointment keeps the Common ID typed', async () => {
    const page = await browser.visit('/console/operators');
    const refused = await browser.submit(page, /\/console\/operators\/people$/, { commonId: '0999999999', role: 'helpdesk' });
    expect(refused.status).toBe(404);
    expect(refused.html).toContain('alert--error');
    expect(inputValue(refused, 'commonId')).toBe('0999999999');
    expect(refused.html).toMatch(/<input[^>]*id="grant-id"[^>]*aria-invalid="true"/);
  });

  test('a new-token form sent when the key had to be shown again is filled in again after the step-up, once, and made no token before it', async () => {
    const page = await browser.visit('/console/operators');
    const typed = { name: 'step-up probe', role: 'office', departments: 'eng, sci/phys', affiliation_student: 'yes', days: '45' };
    const { url, body } = browser.form(page, /\/console\/operators\/tokens$/, typed);
    const again = await sentBeforeStepUp(browser, url, body, [typed.name, typed.departments]);
    expect(new URL(again.url).pathname).toBe('/console/operators');
    expect(inputValue(again, 'name')).toBe('step-up probe');
    expect(again.html).toMatch(/<select[^>]*id="token-role"[^>]*>[\s\S]*?<option value="office" selected>/);
    expect(again.html).toMatch(/<input[^>]*id="token-departments"[^>]*value="eng, sci\/phys"/);
    expect(again.html).toMatch(/<input[^>]*id="token-aff-student"[^>]*checked/);
    expect(inputValue(again, 'days')).toBe('45');
    // That form only: the appointment form is empty.
    expect(inputValue(again, 'commonId')).toBe('');
    expect((await akamon.deps.operators.listTokens()).filter((k) => k.name === 'step-up probe')).toHaveLength(0);
    // Once: the page opened afterwards is empty again.
    expect(inputValue(await browser.visit('/console/operators'), 'name')).toBe('');
    // The form shown again is a new attempt: sent now, with the key just shown, it makes the token.
    expect((await browser.submit(again, /\/console\/operators\/tokens$/, typed)).html).toContain('secret-key');
    expect((await akamon.deps.operators.listTokens()).filter((k) => k.name === 'step-up probe')).toHaveLength(1);
  });

  test('an appointment sent when the key had to be shown again is filled in again after the step-up, and appointed nobody before it', async () => {
    const person = await akamon.createReadyAccount({ name: 'Step-up Appointee', profile: { department: 'eng' } });
    const page = await browser.visit('/console/operators');
    const typed = { commonId: person.commonId, role: 'helpdesk', departments: 'eng' };
    const { url, body } = browser.form(page, /\/console\/operators\/people$/, typed);
    const again = await sentBeforeStepUp(browser, url, body, [person.commonId]);
    expect(inputValue(again, 'commonId')).toBe(person.commonId);
    expect(again.html).toMatch(/<select[^>]*id="grant-role"[^>]*>[\s\S]*?<option value="helpdesk" selected>/);
    expect(again.html).toMatch(/<input[^>]*id="grant-departments"[^>]*value="eng"/);
    // That form only: the new-token form is empty.
    expect(inputValue(again, 'name')).toBe('');
    expect(await akamon.deps.operators.personPrincipal(person.id, person.commonId)).toBeUndefined();
  });

  test('a refused new-token form says why in Japanese on a Japanese page, not in the admin API English', async () => {
    const { browser: ja } = await consoleOperator(akamon, 'admin', null);
    ja.acceptLanguage = 'ja';
    const page = await ja.visit('/console/operators');
    expect(page.html).toContain('<html lang="ja">');
    const refused = await ja.submit(page, /\/console\/operators\/tokens$/, { name: '工学部 同期', role: 'office', departments: '', days: '30' });
    expect(refused.status).toBe(400);
    const alert = /<div class="alert alert--error"[^>]*><p>([\s\S]*?)<\/p>/.exec(refused.html)?.[1] ?? '';
    expect(alert.replace(/<wbr>/g, '')).toBe(translator('ja')('console.refused_scope_needed', { role: translator('ja')('console.role_office') }));
    // No run of English words in the message shown to a Japanese reader.
    expect(alert).not.toMatch(/[A-Za-z]{3,}(?: [A-Za-z]{2,}){2,}/);
  });
});

describe('account pages: forms as an office operator of eng sends them', () => {
  let browser: Browser;
  let student: { commonId: string; id: string };

  beforeAll(async () => {
    ({ browser } = await consoleOperator(akamon, 'office', { departments: ['eng'], affiliations: [] }));
    student = await akamon.createReadyAccount({ name: 'Probe Student', affiliation: 'student', profile: { department: 'eng/mech' } });
  });

  test('a refused token loan keeps the serial typed, says why, and its reload and language switch lead to the account page', async () => {
    const page = await browser.visit(`/console/accounts/${student.commonId}`);
    const refused = await browser.submit(page, /\/lend$/, { serial: 'NO-SUCH-TOKEN-42' });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('No hardware token with this serial number is free to lend');
    expect(inputValue(refused, 'serial')).toBe('NO-SUCH-TOKEN-42');
    expect(refused.html).toMatch(/<input[^>]*name="serial"[^>]*aria-invalid="true" aria-describedby="console-error"/);
    expect(languageBack(refused)).toBe(`/console/accounts/${student.commonId}`);
    expect(pageUrl(refused)).toBe(`/console/accounts/${student.commonId}`);
  });

  test('a console form sent after the session ended comes back to that form after the sign-in, not to the search page', async () => {
    const form = await browser.visit(`/console/accounts/${student.commonId}/suspend`);
    expect(form.status).toBe(200);
    const lend = await browser.visit(`/console/accounts/${student.commonId}`);
    // The operator is called away; the console's hour runs out while the form is open.
    clock.offsetMs = 61 * 60 * 1000;
    try {
      for (const [page, action, back] of [
        [form, /\/suspend$/, `/console/accounts/${student.commonId}/suspend`],
        [lend, /\/lend$/, `/console/accounts/${student.commonId}`],
      ] as const) {
        const { url, body } = browser.form(page, action, { reason: 'reported stolen laptop', serial: 'T-1' });
        const answer = await browser.request(url, { method: 'POST', body, headers: FORM });
        expect(answer.status).toBe(303);
        const login = new URL(answer.headers.get('location')!, akamon.url);
        expect(login.pathname).toBe('/console/login');
        expect(login.searchParams.get('back')).toBe(back);
      }
    } finally {
      clock.offsetMs = 0;
    }
  });

  test('a reason typed into a form whose security-key check lapsed is there again after the step-up, and was in no URL', async () => {
    const back = `/console/accounts/${student.commonId}/suspend`;
    const reason = 'student reported a phishing mail';
    const { url, body } = browser.form(await browser.visit(back), /\/suspend$/, { reason });
    const again = await sentBeforeStepUp(browser, url, body, [reason]);
    expect(new URL(again.url).pathname).toBe(back);
    expect(inputValue(again, 'reason')).toBe(reason);
    // Once: the form opened afterwards is empty again.
    expect(inputValue(await browser.visit(back), 'reason')).toBe('');
    expect((await akamon.deps.accounts.findById(student.id))!.status).toBe('active');
  });

  test('a refused confirmation form puts focus on its error and marks the field, as the sign-in forms do', async () => {
    const form = await browser.visit(`/console/accounts/${student.commonId}/revoke`);
    // A date already past: HelpDesk refuses it, and the same form comes back with the message.
    const refused = await browser.submit(form, /\/revoke$/, { on: '2001-04-01', reason: 'graduated' });
    expect(refused.status).toBe(400);
    const alert = /<div class="alert alert--error"[^>]*>/.exec(refused.html)?.[0] ?? '';
    expect(alert).toContain('role="alert"');
    // views/password.eta: tabindex="-1" autofocus on the alert, aria-invalid on the field it is about.
    expect(alert).toMatch(/\bautofocus\b/);
    expect(alert).toContain('id="console-error"');
    expect(refused.html).toMatch(/<input[^>]*name="on"[^>]*aria-invalid="true" aria-describedby="console-error"/);
    expect(inputValue(refused, 'reason')).toBe('graduated');
    expect(pageUrl(refused)).toBe(`/console/accounts/${student.commonId}/revoke`);
  });

  test("an office operator records the student's education from the account page that shows it as not taken", async () => {
    const learner = await akamon.createReadyAccount({ name: 'Learning Student', affiliation: 'student', profile: { department: 'eng' } });
    const page = await browser.visit(`/console/accounts/${learner.commonId}`);
    expect(page.html).toMatch(/<form[^>]*method="post"[^>]*action="[^"]*\/education"/);
    const bad = await browser.submit(page, /\/education$/, { passed_on: '1999-01-01' });
    expect(bad.status).toBe(400);
    expect(bad.html).toMatch(/<input[^>]*name="passed_on"[^>]*value="1999-01-01"[^>]*aria-invalid="true"/);
    const done = await browser.submit(bad, /\/education$/, {});
    expect(new URL(done.url).searchParams.get('done')).toBe('education_recorded');
    expect(done.html).toContain('information-security education was recorded as passed.');
    // Recorded: the form is gone, and the audit names the operator.
    expect(done.html).not.toMatch(/action="[^"]*\/education"/);
    expect(await auditOf(learner.id, 'education.recorded')).toHaveLength(1);
  });

  test('the reissued-password letter links back to the account (on the screen, not on paper)', async () => {
    const form = await browser.visit(`/console/accounts/${student.commonId}/reissue`);
    const letter = await browser.submit(form, /\/reissue$/, { document: 'student_card', reason: 'forgot the initial password' });
    expect(letter.status).toBe(200);
    expect(letter.html).toContain('class="letter"');
    // In .actions, which the print stylesheet hides.
    expect(letter.html).toMatch(new RegExp(`<p class="actions"[^>]*><a [^>]*href="/console/accounts/${student.commonId}"`));
  });
});

describe('imports: a refused upload as an office operator of eng', () => {
  test('keeps the kind of import chosen (revocations stays selected)', async () => {
    const { browser } = await consoleOperator(akamon, 'office', { departments: ['eng'], affiliations: [] });
    const page = await browser.visit('/console/import');
    const form = new FormData();
    form.set('_csrf', browser.form(page, /\/console\/import$/, {}).body.get('_csrf')!);
    form.set('kind', 'revocations');
    // An empty file: refused before any row is read.
    form.set('file', new File([''], 'revocations.csv', { type: 'text/csv' }));
    const answer = await browser.request('/console/import', { method: 'POST', body: form });
    const html = await answer.text();
    expect(answer.status).toBe(400);
    expect(html).toContain('alert--error');
    expect(html).toMatch(/<option value="revocations"[^>]*\bselected\b/);
    expect(html).toMatch(/<input[^>]*name="file"[^>]*aria-invalid="true"/);
    expect(pageUrl({ html } as Page)).toBe('/console/import');
  });

  test('keeps the kind of import chosen across a step-up, and imports nothing before it', async () => {
    const { browser } = await consoleOperator(akamon, 'office', { departments: ['eng'], affiliations: [] });
    const page = await browser.visit('/console/import');
    const form = new FormData();
    form.set('_csrf', browser.form(page, /\/console\/import$/, {}).body.get('_csrf')!);
    form.set('kind', 'revocations');
    form.set('file', new File(['common_id,revoke_on\n'], 'step-up-revocations.csv', { type: 'text/csv' }));
    const again = await sentBeforeStepUp(browser, '/console/import', form, []);
    expect(new URL(again.url).pathname).toBe('/console/import');
    expect(again.html).toMatch(/<option value="revocations"[^>]*\bselected\b/);
    expect(again.html).not.toContain('step-up-revocations.csv');
  });
});

describe('roles without the permission or without a page', () => {
  test('a help-desk reader opening an action it may not use is told who can do it, with a link back to the account', async () => {
    const { browser } = await consoleOperator(akamon, 'helpdesk', null);
    const student = await akamon.createReadyAccount({ name: 'Asking Student', affiliation: 'student', profile: { department: 'eng' } });
    // A colleague's link, or a bookmark from a previous job.
    const page = await browser.visit(`/console/accounts/${student.commonId}/reissue`);
    expect(page.status).toBe(403);
    expect(page.html).toContain('This is done by: Administrator, Office operator.');
    expect(page.html).toContain(`href="/console/accounts/${student.commonId}"`);
  });

  test('a scoped auditor signing in lands on a page saying what the role can use, not on a 403 whose only link leads back to it', async () => {
    const { landing } = await consoleOperator(akamon, 'auditor', { departments: ['eng'], affiliations: [] });
    expect(landing.status).toBe(200);
    expect(landing.html).toContain('Your role, Auditor, has no page of its own in the console.');
    expect(landing.html).toContain('akamon audit');
  });
});
