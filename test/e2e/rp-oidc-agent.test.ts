import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startAkamon, type RunningAkamon } from '../support/akamon.ts';
import { Browser, type Page } from '../support/browser.ts';
import { enterCredentials } from '../support/flows.ts';
import { watchProcess, type WatchedProcess } from '../support/processes.ts';
import { block, fill, recipeBlocks, registerFromRecipe } from '../support/recipes.ts';
import { missingPackage } from '../support/relying-party.ts';

// docs/relying-parties/oidc-agent.md: Debian's oidc-agent 4.2.6 (its agent, oidc-gen and
// oidc-token) signs a person in through the device grant against Akamon on loopback, with the
// recipe's registration and commands. The test plays the person on the other device.

const unavailable = missingPackage({ '/usr/bin/oidc-agent': 'oidc-agent-cli', '/usr/bin/oidc-gen': 'oidc-agent-cli', '/usr/bin/oidc-token': 'oidc-agent-cli' });
const blocks = unavailable ? new Map<string, string>() : recipeBlocks('oidc-agent.md');
const run = promisify(execFile);

let akamon: RunningAkamon;
let clientId: string;
let work: string;
/** The agent this test started (its own socket directory), and the environment its commands run with. */
let agentPid: number | undefined;
let env: NodeJS.ProcessEnv;

/** A shell script (a block of the recipe), run by bash as a person would paste it. */
const shell = (script: string, name: string): WatchedProcess => watchProcess(spawn('/bin/bash', ['-euc', script], { env, stdio: ['ignore', 'pipe', 'pipe'] }), name);

/** `oidc-gen` of the recipe for the account configuration `shortName`, once it shows the code to type. */
async function generate(shortName: string): Promise<{ gen: WatchedProcess; userCode: string }> {
  const script = fill(block(blocks, 'generate'), { 'https://id.example.ac.jp': akamon.url, 'hpc-login-nodes-5d2e8f71c3a9': clientId, 'oidc-gen akamon ': `oidc-gen ${shortName} ` });
  const gen = shell(script, 'oidc-gen');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !gen.exit) {
    const userCode = /enter the code: ([A-Z]{4}-[A-Z]{4})/.exec(gen.output())?.[1];
    if (userCode) return { gen, userCode };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await gen.stop();
  throw new Error(`oidc-gen showed no code:\n${gen.output()}`);
}

/** The person on the other device: the verification page, the code, its confirmation and the sign-in. */
async function signInElsewhere(userCode: string, account: { commonId: string; password: string }): Promise<{ browser: Browser; page: Page }> {
  const browser = new Browser(akamon.url);
  const form = await browser.visit('/device');
  const confirm = await browser.submit(form, /\/device$/, { user_code: userCode });
  expect(confirm.html).toContain('HPC login nodes on another device asks to sign in with your university account.');
  const page = await enterCredentials(browser, await browser.submit(confirm, /\/device$/, { confirm: 'yes' }), account.commonId, account.password);
  return { browser, page };
}

async function userinfo(accessToken: string) {
  const response = await fetch(`${akamon.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  return { status: response.status, body: response.status === 200 ? ((await response.json()) as Record<string, unknown>) : undefined };
}

(unavailable ? describe.skip : describe)(`oidc-agent through the device grant${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    akamon = await startAkamon();
    const client = await registerFromRecipe(akamon, blocks, {});
    clientId = client.clientId;

    work = fs.mkdtempSync(path.join(os.tmpdir(), 'akamon-oidc-agent-'));
    const { NODE_OPTIONS: _jest, ...inherited } = process.env;
    env = {
      ...inherited,
      HOME: work,
      OIDC_CONFIG_DIR: path.join(work, 'config'),
      OIDC_ENCRYPTION_PW: crypto.randomBytes(16).toString('hex'),
      AKAMON_CLIENT_SECRET: client.clientSecret,
    };
    // The agent daemonises and says where it listens: its own socket in the test's directory.
    const started = await run('/usr/bin/oidc-agent', ['--json', '-a', path.join(work, 'agent', 'oidc-agent.sock')], { env });
    const agent = JSON.parse(started.stdout) as { socket: string; dpid: string };
    agentPid = Number(agent.dpid);
    env.OIDC_SOCK = agent.socket;
  });
  afterAll(async () => {
    if (agentPid) process.kill(agentPid, 'SIGTERM');
    if (work) fs.rmSync(work, { recursive: true, force: true });
    await akamon?.close();
  });

  test('oidc-gen shows a code, the person signs in on another device; oidc-token gives access tokens Akamon accepts, refreshed by the agent', async () => {
    const account = await akamon.createReadyAccount({ name: 'Hanako Agent' });
    const { gen, userCode } = await generate('akamon');
    expect(gen.output()).toContain(`${akamon.url}/device`);
    const { page } = await signInElsewhere(userCode, account);
    expect(page.html).toContain('You can return to your device');
    expect(await gen.exited).toEqual({ code: 0, signal: null });
    expect(gen.output()).toContain('Everything setup correctly!');

    const token = shell(block(blocks, 'token'), 'oidc-token');
    expect(await token.exited).toEqual({ code: 0, signal: null });
    const accessToken = token.output().trim();
    expect(await userinfo(accessToken)).toEqual({ status: 200, body: expect.objectContaining({ sub: account.id, name: 'Hanako Agent', preferred_username: account.commonId }) });

    // A new access token on demand (-f): the agent refreshes with the refresh token it keeps.
    const forced = await run('/usr/bin/oidc-token', ['-f', 'akamon'], { env });
    const fresh = forced.stdout.trim();
    expect(fresh).not.toBe(accessToken);
    expect((await userinfo(fresh)).body).toMatchObject({ sub: account.id });
    const refreshes = await akamon.deps.database.db.selectFrom('oidc_payload').select('consumed_at').where('model', '=', 'RefreshToken').where('account_id', '=', account.id).execute();
    expect(refreshes.filter((row) => row.consumed_at !== null)).toHaveLength(1);
  });

  test("an account the client's rules refuse: the 53003 page, and oidc-gen ends with access_denied", async () => {
    const account = await akamon.createReadyAccount();
    const denied = await fetch(`${akamon.url}/admin/api/clients/${encodeURIComponent(clientId)}/accounts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${akamon.operatorToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ commonId: account.commonId, effect: 'deny' }),
    });
    expect(denied.status).toBe(200);
    const { gen, userCode } = await generate('refused');
    const { browser, page } = await signInElsewhere(userCode, account);
    expect(page.status).toBe(403);
    expect(page.html).toContain('53003');
    expect((await browser.submit(page, /\/leave$/, {})).html).toContain('The sign-in was cancelled, and your device has been told.');
    const exit = await gen.exited;
    expect(exit.code).not.toBe(0);
    expect(gen.output()).toContain('access_denied');
    expect(fs.existsSync(path.join(env.OIDC_CONFIG_DIR!, 'refused'))).toBe(false);
  });
});
