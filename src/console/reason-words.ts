import { signinReasonText } from '../audit/signin-reasons.ts';
import type { Translate } from '../i18n/i18n.ts';
/** A sign-in log reason in the operator's language (src/audit/signin-reasons.ts); an unknown old code as itself. */
export function reasonWords(t: Translate, reason: string): string {
  const words = signinReasonText(reason);
  return words ? t(words.key, { rule: words.rule ?? '' }) : reason;
}
