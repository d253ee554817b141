import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser } from '../support/browser.ts';
import { librarySp, passwordSteps, postedTo, type LibrarySp } from '../support/saml-sp.ts';

// Issue 17 point 6: SAML Single Logout over the front channel, with two node-saml SPs in one
// browser; and the session ends Akamon performs on its own reaching the SAML sessions.

let akamon: RunningAkamon;
let first: LibrarySp;
let second: LibrarySp;

beforeAll(async () => {
  akamon = await startAkamon();
  first = await librarySp(akamon, { name: 'Wiki' });
  second = await librarySp(akamon, { name: 'Mail' });
});
afterAll(() => akamon.close());

/** Signs in to both SPs in one browser: a password at the first, single sign-on at the second. */
async function signedInToBoth() {
  const account = await akamon.createReadyAccount();
  const browser = new Browser(akamon.url);
  const atFirst = await first.accept(await passwordSteps(browser, await browser.visit(await first.loginUrl()), account));
  const atSecond = await second.accept(await browser.visit(await second.loginUrl()));
  return { account, browser, atFirst: atFirst.profile!, atSecond: atSecond.profile! };
}

const query = (url: string) => new URL(url).search.slice(1);
const liveSamlSessions = (accountId: string) => akamon.deps.database.db.selectFrom('saml_session').select('client_id').where('account_id', '=', accountId).where('ended_at', 'is', null).execute();

describe('SAML single logout', () => {
  test('an SP’s LogoutRequest ends the Akamon session, goes round the other SP, and is answered last', async () => {
    const { account, browser, atFirst, atSecond } = await signedInToBoth();
    expect(await liveSamlSessions(account.id)).toHaveLength(2);

    // The first SP sends the browser with a signed LogoutRequest (HTTP-Redirect).
    const toSecond = await browser.request(await first.saml.getLogoutUrlAsync(atFirst, 'first-relay', {}));
    expect(toSecond.status).toBe(302);
    const requestUrl = toSecond.headers.get('location')!;
    expect(requestUrl.startsWith(second.sloUrl)).toBe(true);
    // The second SP verifies Akamon's signed LogoutRequest: its own NameID and SessionIndex.
    const received = await second.saml.validateRedirectAsync(Object.fromEntries(new URL(requestUrl).searchParams), query(requestUrl));
    expect(received.loggedOut).toBe(true);
    expect(received.profile!.nameID).toBe(atSecond.nameID);
    expect(received.profile!.sessionIndex).toBe(atSecond.sessionIndex);

    // It answers; Akamon then answers the first SP with a signed LogoutResponse and its RelayState.
    const relayState = new URL(requestUrl).searchParams.get('RelayState')!;
    const back = await browser.request(await second.saml.getLogoutResponseUrlAsync(received.profile!, relayState, {}, true));
    expect(back.status).toBe(302);
    const responseUrl = back.headers.get('location')!;
    expect(responseUrl.startsWith(first.sloUrl)).toBe(true);
    expect(new URL(responseUrl).searchParams.get('RelayState')).toBe('first-relay');
    const answered = await first.saml.validateRedirectAsync(Object.fromEntries(new URL(responseUrl).searchParams), query(responseUrl));
    expect(answered.loggedOut).toBe(true);

    // The Akamon session is gone: the next sign-in is a sign-in page (the account picker), not an
    // answer to the SP; no SAML session is live.
    const again = await browser.visit(await first.loginUrl());
    expect(postedTo(again)).toBeUndefined();
    expect(again.html).toMatch(/<h1>Choose an account<\/h1>|name="identifier"/);
    expect(await liveSamlSessions(account.id)).toEqual([]);
  });

  test('the same LogoutResponse twice, or one nobody waits for, is refused', async () => {
    const { browser, atFirst } = await signedInToBoth();
    const toSecond = await browser.request(await first.saml.getLogoutUrlAsync(atFirst, '', {}));
    const requestUrl = toSecond.headers.get('location')!;
    const received = await second.saml.validateRedirectAsync(Object.fromEntries(new URL(requestUrl).searchParams), query(requestUrl));
    const answer = await second.saml.getLogoutResponseUrlAsync(received.profile!, new URL(requestUrl).searchParams.get('RelayState')!, {}, true);
    expect((await browser.request(answer)).status).toBe(302);
    const replay = await browser.visit(answer);
    expect(replay.status).toBe(400);
  });

  test('an unsigned LogoutRequest from an SP that has a signing key is refused and ends nothing', async () => {
    const { account, browser, atFirst } = await signedInToBoth();
    const url = new URL(await first.saml.getLogoutUrlAsync(atFirst, '', {}));
    url.searchParams.delete('Signature');
    url.searchParams.delete('SigAlg');
    const page = await browser.visit(url.href);
    expect(page.status).toBe(400);
    expect(await liveSamlSessions(account.id)).toHaveLength(2);
  });

  test('sign out everywhere (and so suspension, revocation) ends the account’s SAML sessions too', async () => {
    const { account } = await signedInToBoth();
    // What sign out everywhere, suspension, revocation and a password reset all call.
    await akamon.deps.payloads.revokeAccount(account.id);
    expect(await liveSamlSessions(account.id)).toEqual([]);
  });
});

describe('signing out at Akamon', () => {
  test('the account home’s sign-out visits the SAML SPs of the session, then goes where it was going', async () => {
    const { account, browser, atSecond } = await signedInToBoth();
    // The sign-out the provider runs (the account home sends people through the same endpoint).
    // Its confirmation form is the provider's (xsrf), posted as the browser would.
    const logout = await browser.visit('/session/end');
    const confirmed = await browser.request(`${akamon.url}/session/end/confirm`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf: /name="xsrf" value="([^"]+)"/.exec(logout.html)![1], logout: 'yes' }).toString(),
    });
    expect(confirmed.status).toBe(303);
    // Both SPs are told, one after the other; then the browser reaches the signed-out page.
    let location = confirmed.headers.get('location')!;
    const told: string[] = [];
    for (let visit = 0; visit < 2; visit++) {
      const at = [first, second].find((sp) => location.startsWith(sp.sloUrl));
      if (!at) throw new Error(`expected a visit to an SP, got ${location}`);
      const received = await at.saml.validateRedirectAsync(Object.fromEntries(new URL(location).searchParams), query(location));
      told.push(at.entityId);
      if (at === second) expect(received.profile!.nameID).toBe(atSecond.nameID);
      const back = await browser.request(await at.saml.getLogoutResponseUrlAsync(received.profile!, new URL(location).searchParams.get('RelayState')!, {}, true));
      location = back.headers.get('location')!;
    }
    expect(told.sort()).toEqual([first.entityId, second.entityId].sort());
    expect(new URL(location, akamon.url).pathname).toBe('/session/end/success');
    expect(await liveSamlSessions(account.id)).toEqual([]);
  });
});
