import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { DeliveryError } from './code-sender.ts';
import { PHONE_GATEWAY_TIMEOUT_MS } from '../config/defaults.ts';

export type PhoneChannel = 'sms' | 'voice';

export interface PhoneMessage {
  to: string;
  channel: PhoneChannel;
  /** The words to send or speak, in the person's language; the code is part of them. */
  text: string;
}

/** Sends one-time codes by SMS or voice call. Pluggable: a signed webhook, a Twilio-compatible API, or the log. */
export interface PhoneGateway {
  readonly available: boolean;
  send(message: PhoneMessage): Promise<void>;
}

const TIMEOUT_MS = PHONE_GATEWAY_TIMEOUT_MS;

async function post(url: string, init: RequestInit): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, method: 'POST', signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    throw new DeliveryError(`gateway unreachable: ${(error as Error).name}`);
  }
  await response.body?.cancel();
  if (!response.ok) throw new DeliveryError(`gateway answered ${response.status}`);
}

/**
 * JSON to the operator's own endpoint, signed so the endpoint can tell it comes from Akamon:
 * X-Akamon-Signature = hex HMAC-SHA256 over "<timestamp>.<body>" with the shared secret.
 */
export function webhookGateway(url: string, secret: string): PhoneGateway {
  return {
    available: true,
    async send(message) {
      const body = JSON.stringify(message);
      const timestamp = String(Math.floor(Date.now() / 1000));
      const signature = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
      await post(url, { headers: { 'content-type': 'application/json', 'x-akamon-timestamp': timestamp, 'x-akamon-signature': `sha256=${signature}` }, body });
    },
  };
}

/** Twilio's REST API (or a compatible one): Messages for SMS, Calls with TwiML for voice. */
export function twilioGateway(options: { apiUrl: string; accountSid: string; authToken: string; from: string }): PhoneGateway {
  const auth = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString('base64')}`;
  const base = `${options.apiUrl.replace(/\/$/, '')}/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}`;
  const escapeXml = (text: string) => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return {
    available: true,
    async send(message) {
      const form =
        message.channel === 'sms'
          ? new URLSearchParams({ To: message.to, From: options.from, Body: message.text })
          : new URLSearchParams({ To: message.to, From: options.from, Twiml: `<Response><Say>${escapeXml(message.text)}</Say><Pause length="1"/><Say>${escapeXml(message.text)}</Say></Response>` });
      await post(`${base}/${message.channel === 'sms' ? 'Messages' : 'Calls'}.json`, { headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    },
  };
}

/** Development only: the message goes to the log, so codes can be read there. */
export function logGateway(logger: Logger): PhoneGateway {
  return {
    available: true,
    async send(message) {
      logger.warn({ to: message.to, channel: message.channel, text: message.text }, 'development phone gateway (not sent)');
    },
  };
}

const unavailable: PhoneGateway = {
  available: false,
  async send() {
    throw new DeliveryError('no phone gateway is configured');
  },
};

export function phoneGatewayFromConfig(config: Config, logger: Logger): PhoneGateway {
  const { phoneGateway: g } = config;
  if (g.kind === 'webhook') return webhookGateway(g.url, g.secret);
  if (g.kind === 'twilio') return twilioGateway(g);
  return config.production ? unavailable : logGateway(logger);
}
