import type * as Nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import { DeliveryError } from '../mfa/code-sender.ts';
import { lazyModule } from '../shared/lazy-module.ts';

const nodemailer = lazyModule((require) => require('nodemailer') as typeof Nodemailer);

export interface Mail {
  to: string;
  subject: string;
  /** The plain-text part; every mail has one. */
  text: string;
}

export interface Mailer {
  readonly available: boolean;
  /** Throws DeliveryError when the mail server cannot take it, so the caller can say "try again". */
  send(mail: Mail): Promise<void>;
}

/** nodemailer's codes for a server that could not be reached or used, unlike a refused recipient (EENVELOPE) or message (EMESSAGE). */
const SERVER_DOWN = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'EAUTH', 'EPROTOCOL']);

/** Real SMTP (nodemailer); in development without a server, mails go to the log; in production, none. */
export function mailerFromConfig(config: Config, logger: Logger): Mailer {
  if (config.smtpUrl) {
    // Short timeouts: a person waits on the page while the code is sent.
    const url = new URL(config.smtpUrl);
    for (const [name, value] of [
      ['connectionTimeout', '5000'],
      ['greetingTimeout', '5000'],
      ['socketTimeout', '10000'],
    ]) {
      if (!url.searchParams.has(name)) url.searchParams.set(name, value);
    }
    // Made on the first mail: nodemailer is loaded then (or by the warm-up), not at start.
    let transport: Nodemailer.Transporter | undefined;
    return {
      available: true,
      async send(mail) {
        transport ??= nodemailer().createTransport(url.href);
        try {
          await transport.sendMail({ from: config.mailFrom, to: mail.to, subject: mail.subject, text: mail.text });
        } catch (error) {
          const code = (error as { code?: string }).code;
          logger.warn({ err: { message: (error as Error).message, code } }, 'mail not sent');
          throw new DeliveryError('the mail server did not take the message', { serverDown: SERVER_DOWN.has(code ?? '') });
        }
      },
    };
  }
  if (!config.production) {
    return {
      available: true,
      async send(mail) {
        logger.warn({ to: mail.to, subject: mail.subject, text: mail.text }, 'development mail (not sent: AKAMON_SMTP_URL is unset)');
      },
    };
  }
  return {
    available: false,
    async send() {
      throw new DeliveryError('no mail server is configured', { serverDown: true });
    },
  };
}
