/**
 * The one judgement of free text. The edge guard applies it to every request parameter, and the
 * domain to every name it keeps (accounts, clients, app passwords, descriptions), so a page, the
 * admin API and the CLI refuse the same characters for the same reasons.
 *
 * - Ill-formed text (a lone UTF-16 surrogate) cannot be stored faithfully: PostgreSQL refuses it or
 *   the driver turns it into U+FFFD, so what was shown is not what was kept.
 * - Control characters (C0, DEL, C1) are never part of a name or a protocol value; NUL in particular
 *   cannot be stored in a PostgreSQL text or jsonb value at all. A field that holds several lines
 *   (a description) keeps tab, CR and LF.
 * - Bidirectional formatting characters (embeddings, overrides, isolates and the invisible marks)
 *   let one name display as another ("Admin" <- "nimdA" under RLO), so names refuse them. Other
 *   fields accept them: a search term or a state value is never shown as someone's identity.
 */
export type TextFault = 'ill_formed' | 'control_character' | 'bidi_control';

export interface TextRules {
  /** Tabs and line breaks are part of the text (a description, a JSON-valued parameter). */
  lineBreaks?: boolean;
  /** Control characters are judged elsewhere (a password: the password policy names that rule). */
  controls?: boolean;
  /** Bidirectional formatting characters are accepted (everywhere but names). */
  bidi?: boolean;
}

// The Unicode category Cc: C0, DEL and C1.
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
// Cc plus the Unicode line and paragraph separators: a one-line text has no line breaks.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// Cc without tab, LF and CR.
const CONTROLS_BUT_LINE_BREAKS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
// ALM, LRM, RLM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI.
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** The first reason the text cannot be accepted under `rules`, or undefined when it is clean. */
export function textFault(text: string, rules: TextRules = {}): TextFault | undefined {
  if (!text.isWellFormed()) return 'ill_formed';
  if (!rules.controls && (rules.lineBreaks ? CONTROLS_BUT_LINE_BREAKS : CONTROLS).test(text)) return 'control_character';
  if (!rules.bidi && BIDI_CONTROLS.test(text)) return 'bidi_control';
  return undefined;
}

/** Whether the text holds a control character (C0, DEL or C1; tab and line feed are ones too). */
export function hasControlCharacter(text: string): boolean {
  return CONTROL_CHARACTERS.test(text);
}

/**
 * A name as it is kept: NFC, trimmed, 1 to `max` UTF-16 units, and free of every fault above (line
 * breaks only when `lineBreaks`). Undefined when the value cannot be such a name; the caller throws
 * its own DomainError, whose message says what a name may hold.
 */
export function cleanName(value: string, max: number, rules: Pick<TextRules, 'lineBreaks'> = {}): string | undefined {
  const name = value.normalize('NFC').trim();
  return name && name.length <= max && !textFault(name, rules) ? name : undefined;
}

/** How much of a caller's own text an error message repeats back (a path, a field name, a value). */
const EXCERPT_MAX = 64;

/**
 * A caller's text as an error message quotes it: at most EXCERPT_MAX characters, with an ellipsis
 * when cut, so a refusal never echoes a whole oversized value back into answers and logs.
 */
export function excerpt(text: string): string {
  if (text.length <= EXCERPT_MAX) return text;
  // A cut between the halves of a surrogate pair would leave ill-formed text.
  const end = /[\ud800-\udbff]/.test(text.charAt(EXCERPT_MAX - 1)) ? EXCERPT_MAX - 1 : EXCERPT_MAX;
  return `${text.slice(0, end)}…`;
}
