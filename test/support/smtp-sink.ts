import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string[];
  raw: string;
}

/** A real SMTP server on loopback that keeps what it receives, for reading mailed codes. */
export async function startSmtpSink(): Promise<{ url: string; mails: ReceivedMail[]; failNext: (n: number) => void; close: () => Promise<void> }> {
  const mails: ReceivedMail[] = [];
  let failures = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        raw += chunk;
      });
      stream.on('end', () => {
        if (failures > 0) {
          failures -= 1;
          return callback(Object.assign(new Error('mailbox unavailable'), { responseCode: 451 }));
        }
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    failNext: (n) => {
      failures = n;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The 6-digit code of the newest mail to `to`. */
export function mailedCode(mails: ReceivedMail[], to: string): string {
  const mail = [...mails].reverse().find((m) => m.to.includes(to.toLowerCase()) || m.to.includes(to));
  if (!mail) throw new Error(`no mail to ${to}`);
  const [head, ...rest] = mail.raw.split(/\r?\n\r?\n/);
  // A Japanese mail's body is base64; an English one quoted-printable (soft line breaks joined).
  const body = /^content-transfer-encoding:\s*base64/im.test(head) ? Buffer.from(rest.join('').replace(/\s+/g, ''), 'base64').toString('utf8') : rest.join('\n').replace(/=\r?\n/g, '');
  const code = /\b(\d{6})\b/.exec(body);
  if (!code) throw new Error(`no 6-digit code in the mail to ${to}`);
  return code[1];
}
