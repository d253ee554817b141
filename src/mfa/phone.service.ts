import type { SecretBox } from '../crypto/secret-box.ts';
import type { CodeSender, SendOutcome } from './code-sender.ts';
import type { FactorRow, MfaStore } from './mfa.store.ts';
import type { PhoneChannel, PhoneGateway } from './phone-gateway.ts';

export interface PhoneTarget {
  phone: string;
  channel: PhoneChannel;
}

/** "+819012345678" from "090-1234-5678" (with the default country) or "+81 90 1234 5678". */
export function normalizePhone(input: unknown, defaultCountry: string): string | undefined {
  if (typeof input !== 'string' || input.length > 40) return undefined;
  const compact = input.normalize('NFKC').replace(/[\s().-]/g, '');
  const e164 = compact.startsWith('+') ? compact : compact.startsWith('0') ? `+${defaultCountry}${compact.slice(1)}` : undefined;
  return e164 && /^\+[1-9]\d{7,14}$/.test(e164) ? e164 : undefined;
}

export function maskPhone(phone: string): string {
  return `•••• ${phone.slice(-4)}`;
}

/**
 * The phone factor: a 6-digit code by SMS or voice call (NIST SP 800-63B-4 calls this a
 * restricted authenticator; the pages say so and offer the others). Codes expire in 10 minutes,
 * are single use, allow 5 tries, and are bound to what they prove (purpose).
 */
export class PhoneService {
  readonly #store: MfaStore;
  readonly #sender: CodeSender;
  readonly #gateway: PhoneGateway;
  readonly #box: SecretBox;

  constructor(deps: { store: MfaStore; sender: CodeSender; gateway: PhoneGateway; box: SecretBox }) {
    this.#store = deps.store;
    this.#sender = deps.sender;
    this.#gateway = deps.gateway;
    this.#box = deps.box;
  }

  get available(): boolean {
    return this.#gateway.available;
  }

  seal(target: PhoneTarget): string {
    return this.#box.encrypt(JSON.stringify(target));
  }

  unseal(sealed: string): PhoneTarget {
    return JSON.parse(this.#box.decrypt(sealed)) as PhoneTarget;
  }

  target(factor: FactorRow): PhoneTarget {
    return this.unseal(factor.secret_enc!);
  }

  send(accountId: string, purpose: string, target: PhoneTarget, text: (code: string) => string): Promise<SendOutcome> {
    return this.#sender.send('phone', accountId, purpose, target.phone, (code) => this.#gateway.send({ to: target.phone, channel: target.channel, text: text(code) }));
  }

  check(accountId: string, purpose: string, input: string) {
    return this.#sender.check(accountId, purpose, input);
  }

  async addFactor(accountId: string, target: PhoneTarget, label: string): Promise<FactorRow> {
    return this.#store.insert({ accountId, kind: 'phone', label, secretEnc: this.seal(target) });
  }
}
