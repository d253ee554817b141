import { describe, expect, test } from '@jest/globals';
import type { Browser as ChromiumBrowser } from 'playwright-core';
import type { RunningAkamon } from '../support/akamon.ts';
import { browserWorldForFile } from '../support/browser-world.ts';
import { signInHome } from '../support/page-sign-in.ts';

// Issue 14 point 7 in a real browser (Debian's chromium) on a 390x844 phone: the recent sign-ins
// table of the account home can be read without anything cut off or hidden sideways, and Japanese
// buttons break only at phrase boundaries, never leaving one character alone on a line.

let akamon: RunningAkamon;
let browser: ChromiumBrowser;
browserWorldForFile((world) => ({ akamon, browser } = world));

/** What the page says about the sign-ins table's layout (read in the page, where the DOM is). */
interface Layout {
  cells: Array<{ left: number; right: number; label: string; text: string }>;
  hiddenSideways: number;
  pageOverflow: number;
  width: number;
}

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true } as const;

describe('on a 390x844 phone', () => {
  for (const locale of ['en-US', 'ja-JP']) {
    test(`the recent sign-ins can be read whole (${locale})`, async () => {
      const account = await akamon.createReadyAccount();
      const client = await akamon.createClient({ name: 'Graduate School of Engineering Course Registration and Grades System' });
      for (const ip of ['2001:db8:1234:5678:9abc:def0:1234:5678', '192.0.2.44']) {
        await akamon.deps.signinLog.record({ accountId: account.id, clientId: client.clientId, ip, userAgent: null, result: 'success', reason: 'password' });
      }
      const context = await browser.newContext({ ...PHONE, locale });
      try {
        const page = await context.newPage();
        await signInHome(page, akamon.url, account);
        const table = page.locator('table.signins');
        await table.waitFor();
        // Every cell lies inside the screen, and nothing is left to a sideways scroll.
        const layout = await page.evaluate<Layout>(`(() => {
          const cells = [...document.querySelectorAll('table.signins td')].map((td) => {
            const box = td.getBoundingClientRect();
            return { left: box.left, right: box.right, label: getComputedStyle(td, '::before').content, text: td.textContent };
          });
          const scroller = document.querySelector('.table-scroll');
          return {
            cells,
            hiddenSideways: scroller.scrollWidth - scroller.clientWidth,
            pageOverflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
            width: window.innerWidth,
          };
        })()`);
        expect(layout.width).toBe(390);
        expect(layout.pageOverflow).toBeLessThanOrEqual(0);
        expect(layout.hiddenSideways).toBeLessThanOrEqual(0);
        expect(layout.cells.length).toBeGreaterThanOrEqual(8);
        for (const cell of layout.cells) {
          expect(cell.left).toBeGreaterThanOrEqual(0);
          expect(cell.right).toBeLessThanOrEqual(390);
        }
        // Each value comes with its column's name (the header row is hidden on a phone).
        const labels = layout.cells.slice(0, 4).map((c) => c.label);
        expect(labels.every((label) => label !== 'none' && label.length > 2)).toBe(true);
        expect(layout.cells.map((c) => c.text).join(' ')).toContain('Course Registration');
        // The table is still a table to assistive technology.
        await expect(page.getByRole('table').getByRole('row').count()).resolves.toBeGreaterThanOrEqual(3);
        await expect(page.getByRole('cell', { name: '192.0.2.44' }).count()).resolves.toBe(1);
      } finally {
        await context.close();
      }
    });
  }

  test('a Japanese button breaks only at a phrase boundary, never leaving one character on its own line', async () => {
    const account = await akamon.createReadyAccount();
    const context = await browser.newContext({ ...PHONE, locale: 'ja-JP' });
    try {
      const page = await context.newPage();
      await signInHome(page, akamon.url, account);
      // Every button of the page made as narrow as its text allows (min-content: its widest
      // unbreakable piece), so that it breaks wherever it may: a lone character would show.
      const lines = await page.evaluate<Array<{ label: string; lines: string[] }>>(`(() => {
        const result = [];
        for (const button of document.querySelectorAll('main button, main .button')) {
          if (!/[\\u3040-\\u30ff\\u4e00-\\u9fff]/.test(button.textContent)) continue;
          button.style.width = 'min-content';
          button.style.display = 'block';
          const byLine = new Map();
          const walker = document.createTreeWalker(button, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            let offset = 0;
            for (const char of node.textContent) {
              const range = document.createRange();
              range.setStart(node, offset);
              range.setEnd(node, offset + char.length);
              offset += char.length;
              const rect = range.getClientRects()[0];
              if (!rect || char.trim() === '') continue;
              const top = Math.round(rect.top);
              byLine.set(top, (byLine.get(top) ?? '') + char);
            }
          }
          result.push({ label: button.innerHTML, lines: [...byLine.entries()].sort(([a], [b]) => a - b).map(([, text]) => text) });
        }
        return result;
      })()`);
      expect(lines.length).toBeGreaterThan(0);
      const wrapped = lines.filter((b) => b.lines.length > 1);
      expect(wrapped.length).toBeGreaterThan(0);
      const alone: string[] = [];
      const midPhrase: string[] = [];
      for (const button of lines) {
        alone.push(...button.lines.filter((line) => [...line].length === 1).map((line) => `${button.label}: "${line}"`));
        // Each line but the last ends where the server marked a phrase boundary.
        const phrases = button.label.split('<wbr>').map((phrase) => phrase.replace(/<[^>]+>/g, '').replace(/\s+/g, '').length);
        const boundaries = new Set(phrases.map((_, i) => phrases.slice(0, i + 1).reduce((sum, length) => sum + length, 0)));
        let read = '';
        for (const line of button.lines.slice(0, -1)) {
          read += line.replace(/\s+/g, '');
          if (!boundaries.has(read.length)) midPhrase.push(`${button.label}: "${line}"`);
        }
      }
      expect(alone).toEqual([]);
      expect(midPhrase).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
