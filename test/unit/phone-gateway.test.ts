import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { twilioGateway } from '../../src/mfa/phone-gateway.ts';
import { DeliveryError } from '../../src/mfa/code-sender.ts';
import { maskPhone, normalizePhone } from '../../src/mfa/phone.service.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

let server: http.Server;
let url: string;
const requests: Array<{ path: string; auth: string | undefined; form: URLSearchParams }> = [];
let status = 201;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      requests.push({ path: req.url!, auth: req.headers.authorization, form: new URLSearchParams(body) });
      res.statusCode = status;
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));

describe('Twilio-compatible gateway', () => {
  const gateway = () => twilioGateway({ apiUrl: url, accountSid: 'AC123', authToken: 'token', from: '+15550001111' });

  test('SMS goes to Messages.json with basic auth, voice to Calls.json with escaped TwiML', async () => {
    status = 201;
    await gateway().send({ to: '+819012345678', channel: 'sms', text: 'code 1 2 3 4 5 6' });
    expect(requests.at(-1)!.path).toBe('/2010-04-01/Accounts/AC123/Messages.json');
    expect(requests.at(-1)!.auth).toBe(`Basic ${Buffer.from('AC123:token').toString('base64')}`);
    expect(Object.fromEntries(requests.at(-1)!.form)).toEqual({ To: '+819012345678', From: '+15550001111', Body: 'code 1 2 3 4 5 6' });
    await gateway().send({ to: '+819012345678', channel: 'voice', text: 'code <1> & 2' });
    expect(requests.at(-1)!.path).toBe('/2010-04-01/Accounts/AC123/Calls.json');
    expect(requests.at(-1)!.form.get('Twiml')).toContain('<Say>code &#60;1&#62; &#38; 2</Say>');
  });

  test('an error answer or an unreachable gateway is a DeliveryError', async () => {
    status = 500;
    await expect(gateway().send({ to: '+819012345678', channel: 'sms', text: 'x' })).rejects.toBeInstanceOf(DeliveryError);
    await expect(twilioGateway({ apiUrl: 'http://127.0.0.1:1', accountSid: 'A', authToken: 'b', from: 'c' }).send({ to: '+1', channel: 'sms', text: 'x' })).rejects.toBeInstanceOf(DeliveryError);
  });
});

describe('phone numbers', () => {
  test.each([
    ['090-1234-5678', '+819012345678'],
    ['０９０ １２３４ ５６７８', '+819012345678'],
    ['+81 (90) 1234-5678', '+819012345678'],
    ['+1 415 555 0100', '+14155550100'],
  ])('%s is %s', (input, expected) => expect(normalizePhone(input, '81')).toBe(expected));

  test.each(['', '12', '+0123456789', 'abc', '+8190123456789012345', 42, null])('%p is refused', (input) => {
    expect(normalizePhone(input, '81')).toBeUndefined();
  });

  test('masked to the last four digits', () => expect(maskPhone('+819012345678')).toBe('•••• 5678'));
});

describe('gateway configuration', () => {
  test('each kind needs its settings, named in the error', () => {
    expect(loadConfig({ AKAMON_PHONE_GATEWAY: 'webhook', AKAMON_PHONE_WEBHOOK_URL: 'https://sms.example.ac.jp/send', AKAMON_PHONE_WEBHOOK_SECRET: 's'.repeat(32) }).phoneGateway).toEqual({
      kind: 'webhook',
      url: 'https://sms.example.ac.jp/send',
      secret: 's'.repeat(32),
    });
    expect(() => loadConfig({ AKAMON_PHONE_GATEWAY: 'webhook' })).toThrow(/AKAMON_PHONE_WEBHOOK_SECRET/);
    expect(() => loadConfig({ AKAMON_PHONE_GATEWAY: 'webhook', AKAMON_PHONE_WEBHOOK_URL: 'not a url', AKAMON_PHONE_WEBHOOK_SECRET: 's'.repeat(32) })).toThrow(ConfigError);
    expect(() => loadConfig({ AKAMON_PHONE_GATEWAY: 'twilio', AKAMON_TWILIO_ACCOUNT_SID: 'A' })).toThrow(/AKAMON_TWILIO_AUTH_TOKEN/);
    expect(() => loadConfig({ AKAMON_PHONE_GATEWAY: 'carrier-pigeon' })).toThrow(/none, webhook or twilio/);
    expect(loadConfig({}).phoneGateway).toEqual({ kind: 'none' });
  });
});
