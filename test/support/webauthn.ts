import crypto from 'node:crypto';

/**
 * A software security key (ES256, "none" attestation, user verified) that answers the options
 * Akamon's pages embed, as a browser's navigator.credentials would: for tests that post the
 * answers themselves (many at once, or twice). Its signature counter stays 0, as many passkeys'
 * do, so only the server's single-use challenge stops a replayed assertion.
 */
export class SoftwareAuthenticator {
  readonly #keys = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  readonly credentialId = crypto.randomBytes(16).toString('base64url');
  readonly #origin: string;

  constructor(origin: string) {
    this.#origin = origin;
  }

  /** The `credential` field for a registration page's options (JSON, as webauthn.js posts it). */
  register(options: { challenge: string; rp: { id: string } }): string {
    const jwk = this.#keys.publicKey.export({ format: 'jwk' });
    const coseKey = cbor(
      new Map<number, unknown>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, Buffer.from(jwk.x!, 'base64url')],
        [-3, Buffer.from(jwk.y!, 'base64url')],
      ]),
    );
    const credentialId = Buffer.from(this.credentialId, 'base64url');
    const length = Buffer.alloc(2);
    length.writeUInt16BE(credentialId.length);
    // Flags: user present, user verified, attested credential data included.
    const authData = Buffer.concat([this.#rpIdHash(options.rp.id), Buffer.from([0x45]), Buffer.alloc(4), Buffer.alloc(16), length, credentialId, coseKey]);
    return JSON.stringify({
      id: this.credentialId,
      rawId: this.credentialId,
      type: 'public-key',
      response: {
        clientDataJSON: this.#clientData('webauthn.create', options.challenge).toString('base64url'),
        attestationObject: cbor(
          new Map<string, unknown>([
            ['fmt', 'none'],
            ['attStmt', new Map()],
            ['authData', authData],
          ]),
        ).toString('base64url'),
        transports: ['usb'],
      },
      clientExtensionResults: {},
    });
  }

  /** The `credential` field for a sign-in page's options. */
  assert(options: { challenge: string; rpId: string }): string {
    // Flags: user present, user verified; the counter stays 0.
    const authData = Buffer.concat([this.#rpIdHash(options.rpId), Buffer.from([0x05]), Buffer.alloc(4)]);
    const clientData = this.#clientData('webauthn.get', options.challenge);
    const signature = crypto.sign('sha256', Buffer.concat([authData, crypto.createHash('sha256').update(clientData).digest()]), this.#keys.privateKey);
    return JSON.stringify({
      id: this.credentialId,
      rawId: this.credentialId,
      type: 'public-key',
      response: { clientDataJSON: clientData.toString('base64url'), authenticatorData: authData.toString('base64url'), signature: signature.toString('base64url') },
      clientExtensionResults: {},
    });
  }

  /** The private key (PKCS#8, base64), to put the same credential in chromium's virtual authenticator (WebAuthn.addCredential). */
  privateKeyPkcs8(): string {
    return this.#keys.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
  }

  #clientData(type: string, challenge: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin: this.#origin, crossOrigin: false }));
  }

  #rpIdHash(rpId: string): Buffer {
    return crypto.createHash('sha256').update(rpId).digest();
  }
}

/** The WebAuthn options a page embeds for its script. */
export function webauthnOptions<T>(html: string): T {
  return JSON.parse(/id="webauthn-options">([^<]+)<\/script>/.exec(html)![1].replace(/\\u003c/g, '<')) as T;
}

/** Just enough CBOR (RFC 8949) for an attestation object and a COSE key: integers, strings, bytes, maps. */
function cbor(value: unknown): Buffer {
  const head = (major: number, length: number) => {
    if (length < 24) return Buffer.from([(major << 5) | length]);
    if (length < 256) return Buffer.from([(major << 5) | 24, length]);
    const bytes = Buffer.alloc(3);
    bytes[0] = (major << 5) | 25;
    bytes.writeUInt16BE(length, 1);
    return bytes;
  };
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === 'string') return Buffer.concat([head(3, Buffer.byteLength(value)), Buffer.from(value)]);
  if (Buffer.isBuffer(value)) return Buffer.concat([head(2, value.length), value]);
  if (value instanceof Map) return Buffer.concat([head(5, value.size), ...[...value].flatMap(([k, v]) => [cbor(k), cbor(v)])]);
  throw new Error(`cbor: cannot encode ${typeof value}`);
}
