import { solveChallenge } from 'altcha-lib/v1';
import type { Page } from './browser.ts';

/** Does what the page's script does: finds the proof-of-work number and builds the payload. */
export async function solveCaptcha(page: Page): Promise<string> {
  const json = /<script type="application\/json" id="captcha-challenge">([^<]+)<\/script>/.exec(page.html)![1];
  const challenge = JSON.parse(json.replace(/\\u003c/g, '<')) as { algorithm: string; challenge: string; salt: string; signature: string; maxnumber?: number };
  const solution = await solveChallenge(challenge.challenge, challenge.salt, challenge.algorithm, challenge.maxnumber ?? 1_000_000).promise;
  return Buffer.from(JSON.stringify({ algorithm: challenge.algorithm, challenge: challenge.challenge, number: solution!.number, salt: challenge.salt, signature: challenge.signature })).toString(
    'base64',
  );
}
