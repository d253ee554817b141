import { generateServiceProviderMetadata, SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import { Browser } from '../test/support/browser.ts';
import { testKeyPair, type TestKeyPair } from '../test/support/saml-keys.ts';
import { postedFields, postedTo } from '../test/support/saml-sp.ts';
import { call, credentialSteps } from './client.ts';
import type { BenchAccount } from './setup.ts';

// A SAML service provider for the benchmark (@node-saml/node-saml, as an independent SP would be):
// its key and metadata made at setup, its sign-ins sent over HTTP-Redirect, and its check of what
// Akamon posts back.

/** What the SP is registered with. Its consumer service is never served: the generator reads the form Akamon's page would post. */
export interface BenchSp {
  entityId: string;
  acsUrl: string;
  keys: TestKeyPair;
  metadataXml: string;
}

export async function benchSp(): Promise<BenchSp> {
  const entityId = 'https://sp.bench.example.ac.jp/saml';
  const acsUrl = 'https://sp.bench.example.ac.jp/saml/acs';
  const keys = await testKeyPair('rsa', 'sp.bench.example.ac.jp');
  // A key of its own signs its AuthnRequests, as most SPs do: Akamon checks each signature.
  const metadataXml = generateServiceProviderMetadata({
    issuer: entityId,
    callbackUrl: acsUrl,
    privateKey: keys.privatePem,
    publicCerts: keys.certificatePem,
    identifierFormat: null,
    wantAssertionsSigned: true,
  });
  return { entityId, acsUrl, keys, metadataXml };
}

/** The SP at run time, trusting the certificates of Akamon's metadata as an SP administrator would. */
export async function samlSp(url: string, sp: BenchSp) {
  const metadata = (await call(`${url}/saml/metadata`)).text;
  const idpCert = [...metadata.matchAll(/<ds:X509Certificate>([^<]+)<\/ds:X509Certificate>/g)].map((m) => m[1]!);
  const saml = new SAML({
    entryPoint: `${url}/saml/sso`,
    issuer: sp.entityId,
    callbackUrl: sp.acsUrl,
    idpCert,
    idpIssuer: `${url}/saml/metadata`,
    audience: sp.entityId,
    privateKey: sp.keys.privatePem,
    signatureAlgorithm: 'sha256',
    identifierFormat: null,
    disableRequestedAuthnContext: true,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: true,
    // Every answer must be to a request this SP sent (its IDs are kept in node-saml's cache).
    validateInResponseTo: ValidateInResponseTo.always,
  });
  const posted: Array<Record<string, string>> = [];
  let firstSignIn = 0;
  return {
    /**
     * One sign-in: the SP makes its signed AuthnRequest (not timed), then the browser's part on
     * Akamon is timed: /saml/sso, identifier, password, TOTP, /saml/continue, up to the page that
     * posts the SAMLResponse. Resolves to those milliseconds, or false.
     */
    async signIn(account: BenchAccount): Promise<number | false> {
      const loginUrl = await saml.getAuthorizeUrlAsync('', undefined, {});
      firstSignIn ||= Date.now();
      const browser = new Browser(url);
      const t0 = performance.now();
      const page = await credentialSteps(browser, await browser.visit(loginUrl), account);
      const ms = performance.now() - t0;
      if (page?.status !== 200 || postedTo(page) !== sp.acsUrl) return false;
      posted.push(postedFields(page));
      return ms;
    },
    /**
     * The SP's check of every answer posted so far (signatures, issuer, audience, recipient,
     * InResponseTo, validity), after the timed run, so that the generator's XML work is not
     * counted against Akamon. The check comes later than a browser would post, and the clock skew
     * allowed is that delay (and 5 s), so that an assertion is not refused for the wait alone.
     */
    async check(): Promise<{ valid: number; invalid: number; msEach: number; firstRefusal?: string }> {
      saml.options.acceptedClockSkewMs = Date.now() - firstSignIn + 5000;
      const answers = posted.splice(0);
      const t0 = performance.now();
      let valid = 0;
      let firstRefusal: string | undefined;
      for (const fields of answers) {
        try {
          if ((await saml.validatePostResponseAsync(fields)).profile?.nameID) valid += 1;
        } catch (error) {
          firstRefusal ??= (error as Error).message;
        }
      }
      const msEach = answers.length ? Math.round(((performance.now() - t0) / answers.length) * 10) / 10 : 0;
      return { valid, invalid: answers.length - valid, msEach, firstRefusal };
    },
  };
}
