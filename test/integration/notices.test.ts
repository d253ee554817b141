import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generate } from 'otplib';
import { adminApi, startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { shiftableClock } from '../support/clock.ts';
import type { ReceivedMail } from '../support/smtp-sink.ts';
import { loadConfig } from '../../src/config/config.ts';
import { NOTICE_MAX_ATTEMPTS, NOTICE_RETRY_MAX_SECONDS } from '../../src/config/defaults.ts';
import { formatDate } from '../../src/i18n/i18n.ts';

// Notices by mail (src/notice/): two nodes on one database with one clock, each with its own real
// SMTP server; every occasion must arrive once per address, whichever node found and sent it.
const DAY = 86_400_000;
const MINUTE = 60_000;
const T0 = Date.now();
/** The university-wide MFA date of these nodes. */
const MFA_DATE = new Date(T0 + 300 * DAY);

const clock = shiftableClock();
const setNow = (at: number) => {
  clock.offset = at - Date.now();
};

let a: RunningAkamon;
let b: RunningAkamon;

beforeAll(async () => {
  const env = { AKAMON_MFA_REQUIRED_FROM: MFA_DATE.toISOString() };
  a = await startAkamon({ clock, env });
  b = await startAkamon({ clock, share: a, env: { ...env, AKAMON_ISSUER: a.url } });
});
afterAll(async () => {
  await b.close();
  await a.close();
});

/** A mail as a person reads it: the subject and the text/plain body, decoded. */
function readMail(mail: ReceivedMail): { to: string[]; subject: string; body: string } {
  const [head, ...rest] = mail.raw.split(/\r?\n\r?\n/);
  const headers = head.replace(/\r?\n[ \t]+/g, ' ');
  const rawSubject = /^subject: (.*)$/im.exec(headers)?.[1] ?? '';
  // Adjacent encoded words are one text: join their bytes before decoding (a character may span two).
  const subject = rawSubject.replace(/(=\?utf-8\?[bq]\?[^?]*\?=\s*)+/gi, (run) => {
    const bytes = [...run.matchAll(/=\?utf-8\?([bq])\?([^?]*)\?=/gi)].map(([, enc, text]) =>
      enc.toLowerCase() === 'b'
        ? Buffer.from(text, 'base64')
        : Buffer.from(
            text.replace(/_/g, ' ').replace(/=([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
            'latin1',
          ),
    );
    return Buffer.concat(bytes).toString('utf8');
  });
  const text = rest.join('\n\n');
  const body = /^content-transfer-encoding:\s*base64/im.test(headers)
    ? Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8')
    : Buffer.from(
        text.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
        'latin1',
      ).toString('utf8');
  return { to: mail.to, subject, body };
}

const SUBJECTS = {
  revocation: 'will be closed',
  password_expiry: 'password expires',
  mfa_required: 'second sign-in method is required',
  factor_added: 'was added',
  factor_removed: 'was removed',
};

/** The mails of one kind to one address that either node sent. */
function mailsTo(address: string, kind: keyof typeof SUBJECTS, nodes: RunningAkamon[] = [a, b]) {
  return nodes
    .flatMap((node) => node.mails)
    .filter((m) => m.to.includes(address.toLowerCase()))
    .map(readMail)
    .filter((m) => m.subject.includes(SUBJECTS[kind]));
}

/** Both nodes run their whole periodic job at the same moment. */
async function sweepBoth(): Promise<void> {
  await Promise.all([a.akamon.sweeper.sweep(), b.akamon.sweeper.sweep()]);
}

/** An account with its university address and a confirmed recovery address. */
async function person(node: RunningAkamon = a) {
  const account = await node.createReadyAccount();
  const university = `${account.commonId}@mail.example.ac.jp`;
  const recovery = `${account.commonId}.home@example.com`;
  await node.deps.accounts.setRecoveryEmail(account.id, recovery);
  return { ...account, university, recovery };
}

async function addAuthenticatorApp(node: RunningAkamon, accountId: string): Promise<string> {
  const { secret, sealed } = node.deps.mfa.pendingTotp();
  const code = await generate({ secret, epoch: Math.floor(node.deps.clock.now().getTime() / 1000) });
  const outcome = await node.deps.mfa.confirmTotp(accountId, sealed, code, 'phone app');
  if (!outcome.ok) throw new Error(`the authenticator app was not added: ${outcome.reason}`);
  return outcome.factor.id;
}

async function settled(): Promise<void> {
  await Promise.all([a.deps.notices.settled(), b.deps.notices.settled()]);
}

const notices = (accountId: string, kind: string) => a.deps.notices.forAccount(accountId).then((rows) => rows.filter((r) => r.kind === kind));

describe('before a scheduled revocation', () => {
  test('one mail per address at 60 and at 14 days, none before, both languages, from two nodes at once', async () => {
    setNow(T0);
    const who = await person();
    const at = new Date(T0 + 100 * DAY);
    expect((await adminApi(a, 'POST', `/accounts/${who.commonId}/revoke`, { on: at.toISOString(), reason: 'graduation' })).status).toBe(200);

    setNow(at.getTime() - 61 * DAY);
    await sweepBoth();
    expect(mailsTo(who.university, 'revocation')).toHaveLength(0);
    expect(await notices(who.id, 'revocation')).toHaveLength(0);

    setNow(at.getTime() - 60 * DAY + MINUTE);
    await sweepBoth();
    await sweepBoth();
    for (const address of [who.university, who.recovery]) expect(mailsTo(address, 'revocation')).toHaveLength(1);
    const first = await notices(who.id, 'revocation');
    expect(first.map((n) => [n.recipient, n.status, n.occasion, n.attempts])).toEqual(
      expect.arrayContaining([
        ['university', 'sent', `${at.toISOString()}/60d`, 1],
        ['recovery', 'sent', `${at.toISOString()}/60d`, 1],
      ]),
    );
    expect(first).toHaveLength(2);
    // Recorded masked: the help desk sees where it went, the table holds no address to harvest.
    expect(first.map((n) => n.sent_to).sort()).toEqual([`${who.commonId[0]}****@e****.com`, `${who.commonId[0]}****@m****.jp`]);

    const mail = mailsTo(who.recovery, 'revocation')[0];
    expect(mail.subject).toContain('失効');
    expect(mail.body).toContain(formatDate('ja', at, a.config.timeZone));
    expect(mail.body).toContain(formatDate('en', at, a.config.timeZone));
    expect(mail.body).toMatch(/バックアップ|ダウンロード/);
    expect(mail.body).toContain('Download your files');
    expect(mail.body).toContain(`${a.url}/account/idv`);
    expect(mail.body).toContain('マイナンバーカード');

    setNow(at.getTime() - 15 * DAY);
    await sweepBoth();
    expect(mailsTo(who.university, 'revocation')).toHaveLength(1);

    setNow(at.getTime() - 14 * DAY + MINUTE);
    await sweepBoth();
    await sweepBoth();
    for (const address of [who.university, who.recovery]) expect(mailsTo(address, 'revocation')).toHaveLength(2);
    expect((await notices(who.id, 'revocation')).filter((n) => n.occasion.endsWith('/14d') && n.status === 'sent')).toHaveLength(2);
  });

  test('a revocation cancelled before the mail went out sends nothing', async () => {
    setNow(T0);
    const who = await person();
    const at = new Date(T0 + 90 * DAY);
    expect((await adminApi(a, 'POST', `/accounts/${who.commonId}/revoke`, { on: at.toISOString() })).status).toBe(200);
    setNow(at.getTime() - 60 * DAY + MINUTE);
    await a.deps.notices.findDue(1000);
    expect((await notices(who.id, 'revocation')).map((n) => n.status)).toEqual(['pending', 'pending']);
    expect((await adminApi(a, 'DELETE', `/accounts/${who.commonId}/revocation`)).status).toBe(200);
    await sweepBoth();
    expect(mailsTo(who.university, 'revocation')).toHaveLength(0);
    expect(mailsTo(who.recovery, 'revocation')).toHaveLength(0);
    expect((await notices(who.id, 'revocation')).map((n) => [n.status, n.last_error])).toEqual([
      ['dropped', 'occasion_gone'],
      ['dropped', 'occasion_gone'],
    ]);
  });

  test('a mail the server refused is retried later and arrives once; after the last attempt it is recorded as failed', async () => {
    setNow(T0);
    const who = await person();
    const at = new Date(T0 + 80 * DAY);
    await a.deps.revocations.schedule(who.commonId, at, null);
    setNow(at.getTime() - 60 * DAY + MINUTE);
    a.smtp.failNext(2);
    await a.deps.notices.findDue(1000);
    expect(await a.deps.notices.deliverDue(1000)).toBeGreaterThanOrEqual(2);
    const failed = await notices(who.id, 'revocation');
    expect(failed.map((n) => [n.status, n.attempts, n.sent_at])).toEqual([
      ['pending', 1, null],
      ['pending', 1, null],
    ]);
    expect(failed[0].last_error).toMatch(/mail server/);
    expect(mailsTo(who.university, 'revocation', [a])).toHaveLength(0);
    // Not due again yet: the first retry waits a minute.
    await a.deps.notices.deliverDue(1000);
    expect((await notices(who.id, 'revocation')).map((n) => n.attempts)).toEqual([1, 1]);

    clock.offset += 61_000;
    await sweepBoth();
    for (const address of [who.university, who.recovery]) expect(mailsTo(address, 'revocation')).toHaveLength(1);
    expect((await notices(who.id, 'revocation')).map((n) => [n.status, n.attempts, n.last_error])).toEqual([
      ['sent', 2, null],
      ['sent', 2, null],
    ]);
    // The log says what happened, with the address masked.
    const noticeLogs = a.logs.filter((line) => line.includes('"notice not sent: will retry"'));
    expect(noticeLogs.length).toBeGreaterThanOrEqual(2);
    expect(noticeLogs.join('\n')).not.toContain(who.university);
    expect(noticeLogs.join('\n')).not.toContain(who.recovery);

    // A server that never takes it: bounded attempts, then recorded as failed, never sent.
    const unlucky = await person();
    await a.deps.revocations.schedule(unlucky.commonId, at, null);
    a.smtp.failNext(10_000);
    await a.deps.notices.findDue(1000);
    for (let attempt = 0; attempt < NOTICE_MAX_ATTEMPTS + 2; attempt += 1) {
      await a.deps.notices.deliverDue(1000);
      clock.offset += (NOTICE_RETRY_MAX_SECONDS + 1) * 1000;
    }
    a.smtp.failNext(0);
    await a.deps.notices.deliverDue(1000);
    expect((await notices(unlucky.id, 'revocation')).map((n) => [n.status, n.attempts])).toEqual([
      ['failed', NOTICE_MAX_ATTEMPTS],
      ['failed', NOTICE_MAX_ATTEMPTS],
    ]);
    expect(mailsTo(unlucky.university, 'revocation')).toHaveLength(0);
  });
});

describe('before a password expires', () => {
  test('one mail 14 days before, none at 15; none once the password changed or MFA was added', async () => {
    setNow(T0);
    const who = await person();
    const changes = await person();
    const secures = await person();
    const setAt = (await a.deps.accounts.findById(who.id))!.password_set_at.getTime();
    const expires = setAt + a.config.passwordExpiry.maxAgeDays * DAY;

    setNow(expires - 15 * DAY);
    await sweepBoth();
    expect(mailsTo(who.university, 'password_expiry')).toHaveLength(0);

    setNow(expires - 14 * DAY + MINUTE);
    await a.deps.notices.findDue(1000);
    // Between finding and sending: one person chooses a new password, another adds a second factor.
    await a.deps.accountService.changePassword(changes.id, changes.password, 'Zx8!nQw4#Lp2vT', 'Zx8!nQw4#Lp2vT');
    await addAuthenticatorApp(b, secures.id);
    await sweepBoth();
    await settled();
    for (const address of [who.university, who.recovery]) expect(mailsTo(address, 'password_expiry')).toHaveLength(1);
    const mail = mailsTo(who.university, 'password_expiry')[0];
    expect(mail.body).toContain(formatDate('ja', new Date(expires), a.config.timeZone));
    expect(mail.body).toContain(formatDate('en', new Date(expires), a.config.timeZone));
    expect(mail.body).toContain('有効期限');
    expect(mail.body).toContain(`${a.url}/account/security`);
    for (const other of [changes, secures]) {
      expect(mailsTo(other.university, 'password_expiry')).toHaveLength(0);
      expect((await notices(other.id, 'password_expiry')).map((n) => n.status)).toEqual(['dropped', 'dropped']);
    }
  });
});

describe('before the MFA date', () => {
  test('accounts without MFA get one mail at 30 and at 7 days; accounts with MFA none', async () => {
    setNow(T0);
    const without = await person();
    const withMfa = await person();
    await addAuthenticatorApp(a, withMfa.id);
    const lateAdder = await person();

    setNow(MFA_DATE.getTime() - 31 * DAY);
    await sweepBoth();
    expect(mailsTo(without.university, 'mfa_required')).toHaveLength(0);

    setNow(MFA_DATE.getTime() - 30 * DAY + MINUTE);
    await b.deps.notices.findDue(1000);
    await addAuthenticatorApp(a, lateAdder.id);
    await sweepBoth();
    await sweepBoth();
    await settled();
    for (const address of [without.university, without.recovery]) expect(mailsTo(address, 'mfa_required')).toHaveLength(1);
    expect(mailsTo(withMfa.university, 'mfa_required')).toHaveLength(0);
    expect(mailsTo(lateAdder.university, 'mfa_required')).toHaveLength(0);
    expect((await notices(lateAdder.id, 'mfa_required')).map((n) => n.status)).toEqual(['dropped', 'dropped']);
    const mail = mailsTo(without.recovery, 'mfa_required')[0];
    expect(mail.body).toContain(formatDate('ja', MFA_DATE, a.config.timeZone));
    expect(mail.body).toContain('多要素認証');
    expect(mail.body).toContain('authenticator app');

    // Made once the walk has passed: with an id below every other (ids are random), it is behind
    // the walk's cursor, and found by when it was made.
    const straggler = await person();
    await a.deps.database.db.updateTable('account').set({ id: '00000000-0000-4000-8000-000000000001' }).where('id', '=', straggler.id).execute();
    await sweepBoth();
    await settled();
    for (const address of [straggler.university, straggler.recovery]) expect(mailsTo(address, 'mfa_required')).toHaveLength(1);

    setNow(MFA_DATE.getTime() - 7 * DAY + MINUTE);
    await sweepBoth();
    await sweepBoth();
    for (const address of [without.university, without.recovery]) expect(mailsTo(address, 'mfa_required')).toHaveLength(2);
    expect((await notices(without.id, 'mfa_required')).map((n) => n.occasion).sort()).toEqual([
      `${MFA_DATE.toISOString()}/30d`,
      `${MFA_DATE.toISOString()}/30d`,
      `${MFA_DATE.toISOString()}/7d`,
      `${MFA_DATE.toISOString()}/7d`,
    ]);
  });
});

describe('a sign-in method added or removed', () => {
  test('is mailed at once to the university and the recovery address, once each', async () => {
    setNow(T0);
    const who = await person();
    const factorId = await addAuthenticatorApp(a, who.id);
    await settled();
    for (const address of [who.university, who.recovery]) expect(mailsTo(address, 'factor_added')).toHaveLength(1);
    const added = mailsTo(who.university, 'factor_added')[0];
    expect(added.body).toContain('認証アプリ');
    expect(added.body).toContain('Authenticator app');

    expect(await b.deps.mfa.removeFactor(who.id, factorId)).toBe(true);
    await settled();
    await sweepBoth();
    for (const address of [who.university, who.recovery]) expect(mailsTo(address, 'factor_removed')).toHaveLength(1);

    // An operator's reset of every method is one more change, named as such. (A new time step: a used one is refused as a replay.)
    clock.offset += 60_000;
    await addAuthenticatorApp(b, who.id);
    expect((await adminApi(a, 'POST', `/accounts/${who.commonId}/reset-mfa`, {})).status).toBe(200);
    await settled();
    await sweepBoth();
    for (const address of [who.university, who.recovery]) {
      expect(mailsTo(address, 'factor_added')).toHaveLength(2);
      expect(mailsTo(address, 'factor_removed')).toHaveLength(2);
    }
    expect(mailsTo(who.recovery, 'factor_removed').some((m) => m.body.includes('すべてのサインイン方法') && m.body.includes('all sign-in methods'))).toBe(true);
    expect((await a.deps.notices.forAccount(who.id)).filter((n) => n.kind.startsWith('factor_')).every((n) => n.status === 'sent')).toBe(true);
  });

  test('lending a hardware token and taking it back are mailed too (each lending is its own occasion)', async () => {
    setNow(T0);
    const who = await person();
    const serial = `NT${who.commonId}`;
    expect((await adminApi(a, 'POST', '/tokens', { serial, secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', digits: 6, period: 30 })).status).toBe(201);
    for (let round = 1; round <= 2; round++) {
      expect((await adminApi(a, 'POST', `/tokens/${serial}/assign`, { commonId: who.commonId })).status).toBe(200);
      expect((await adminApi(b, 'POST', `/tokens/${serial}/unassign`)).status).toBe(200);
      await settled();
      await sweepBoth();
      for (const address of [who.university, who.recovery]) {
        expect(mailsTo(address, 'factor_added')).toHaveLength(round);
        expect(mailsTo(address, 'factor_removed')).toHaveLength(round);
      }
    }
  });
});

test('with the switches off, nothing is recorded or mailed', async () => {
  const own = shiftableClock();
  const off = await startAkamon({
    clock: own,
    env: {
      AKAMON_NOTICE_REVOCATION: 'off',
      AKAMON_NOTICE_PASSWORD_EXPIRY: 'off',
      AKAMON_NOTICE_MFA_REQUIRED: 'off',
      AKAMON_NOTICE_FACTOR_CHANGE: 'off',
      AKAMON_MFA_REQUIRED_FROM: MFA_DATE.toISOString(),
    },
  });
  try {
    const who = await person(off);
    const secured = await person(off);
    await addAuthenticatorApp(off, secured.id);
    const at = new Date(Date.now() + 30 * DAY);
    await off.deps.revocations.schedule(who.commonId, at, null);
    const setAt = (await off.deps.accounts.findById(who.id))!.password_set_at.getTime();
    // At each occasion's shortest lead time: the revocation, the MFA date, the password's expiry.
    for (const moment of [at.getTime() - 14 * DAY, MFA_DATE.getTime() - 7 * DAY, setAt + (off.config.passwordExpiry.maxAgeDays - 14) * DAY]) {
      own.offset = moment + MINUTE - Date.now();
      await off.akamon.sweeper.sweep();
    }
    await off.deps.notices.settled();
    for (const account of [who, secured]) expect(await off.deps.notices.forAccount(account.id)).toEqual([]);
    expect(off.mails).toHaveLength(0);
  } finally {
    await off.close();
  }
});

test('lead times that are not whole days are refused at start with the variable named', () => {
  expect(() => loadConfig({ AKAMON_NOTICE_REVOCATION_DAYS: '60,two weeks' })).toThrow(/AKAMON_NOTICE_REVOCATION_DAYS must be whole numbers of days/);
  expect(() => loadConfig({ AKAMON_NOTICE_MFA_REQUIRED_DAYS: '0' })).toThrow(/between 1 and 3650/);
  expect(() => loadConfig({ AKAMON_NOTICE_FACTOR_CHANGE: 'maybe' })).toThrow(/AKAMON_NOTICE_FACTOR_CHANGE must be true or false/);
  expect(loadConfig({ AKAMON_NOTICE_REVOCATION_DAYS: '14, 90,30' }).notices.revocation).toEqual({ enabled: true, days: [90, 30, 14] });
});
