import { describe, expect, test } from '@jest/globals';
import { cleanName, hasControlCharacter, textFault } from '../../src/shared/text.ts';

describe('textFault', () => {
  test('clean text, including non-ASCII, emoji and U+FFFD itself, has no fault', () => {
    for (const text of ['', 'Hanako Todai', '東京 花子', 'Zoë', '😀', 'a\ufffdb', 'مرحبا', '%00']) expect(textFault(text)).toBeUndefined();
  });

  test('a lone surrogate, high or low, is ill-formed; a pair is not', () => {
    expect(textFault('a\ud800')).toBe('ill_formed');
    expect(textFault('\udc00a')).toBe('ill_formed');
    expect(textFault('\udc00\ud800')).toBe('ill_formed');
    expect(textFault('\ud83d\ude00')).toBeUndefined();
    // Ill-formed text is refused even where controls and bidi characters are allowed.
    expect(textFault('\ud800', { controls: true, bidi: true, lineBreaks: true })).toBe('ill_formed');
  });

  test('every C0 control, DEL and every C1 control is a control character', () => {
    const controls = [...Array.from({ length: 0x20 }, (_, i) => i), 0x7f, ...Array.from({ length: 0x20 }, (_, i) => 0x80 + i)];
    for (const code of controls) expect(textFault(`a${String.fromCharCode(code)}b`)).toBe('control_character');
    expect(textFault('a\u00a0b')).toBeUndefined(); // NBSP is a space, not a control
  });

  test('line breaks and tab only where the field holds lines; the Unicode separators count as line breaks', () => {
    for (const text of ['a\nb', 'a\r\nb', 'a\tb', 'a\u2028b', 'a\u2029b']) {
      expect(textFault(text)).toBe('control_character');
      expect(textFault(text, { lineBreaks: true })).toBeUndefined();
    }
    for (const text of ['a\u000bb', 'a\u000cb', 'a\u0000b', 'a\u0085b']) expect(textFault(text, { lineBreaks: true })).toBe('control_character');
  });

  test('controls: true leaves control characters to another rule (passwords)', () => {
    expect(textFault('a\u0000\u0085b', { controls: true })).toBeUndefined();
  });

  test('bidirectional formatting characters are refused unless allowed', () => {
    for (const c of ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c']) {
      expect(textFault(`Admin${c}`)).toBe('bidi_control');
      expect(textFault(`Admin${c}`, { bidi: true })).toBeUndefined();
    }
    // Right-to-left letters themselves are fine.
    expect(textFault('שלום')).toBeUndefined();
  });
});

describe('hasControlCharacter', () => {
  test('C0 (tab and line feed included), DEL and C1; not the Unicode separators or spaces', () => {
    for (const c of ['\u0000', '\t', '\n', '\u007f', '\u0085']) expect(hasControlCharacter(`x${c}`)).toBe(true);
    for (const c of [' ', '\u3000', '\u2028', 'é']) expect(hasControlCharacter(`x${c}`)).toBe(false);
  });
});

describe('cleanName', () => {
  test('NFC, trimmed, within the length', () => {
    expect(cleanName('  Zoe\u0308 ', 10)).toBe('Zoë');
    expect(cleanName('a'.repeat(10), 10)).toBe('a'.repeat(10));
    expect(cleanName('a'.repeat(11), 10)).toBeUndefined();
    expect(cleanName('   ', 10)).toBeUndefined();
    expect(cleanName('', 10)).toBeUndefined();
  });

  test('surrounding whitespace is trimmed away, inner line breaks and controls are refused', () => {
    expect(cleanName('Hanako\n', 20)).toBe('Hanako');
    expect(cleanName('Han\nako', 20)).toBeUndefined();
    expect(cleanName('Han\u0000ako', 20)).toBeUndefined();
    expect(cleanName('Hanako\u0085', 20)).toBeUndefined();
  });

  test('a bidi override or a lone surrogate is refused', () => {
    expect(cleanName('Evil \u202Ecod.exe', 50)).toBeUndefined();
    expect(cleanName('Hanako\u200F', 50)).toBeUndefined();
    expect(cleanName('Hanako\ud800', 50)).toBeUndefined();
  });

  test('a description keeps its line breaks', () => {
    expect(cleanName('Line one\r\nLine two\n', 50, { lineBreaks: true })).toBe('Line one\r\nLine two');
    expect(cleanName('Line one\n\u202E', 50, { lineBreaks: true })).toBeUndefined();
  });
});
