import type { KoaContextWithOIDC } from 'oidc-provider';

/**
 * The forms a name claim comes in (OIDC Core 5.2): Latin script, Japanese script (kanji and kana
 * as written) and the katakana reading. Each is released under its language tag, `name#en`,
 * `name#ja-Jpan-JP`, `name#ja-Kana-JP`; claims_locales picks the one the untagged claim carries.
 */
export const NAME_FORMS = ['en', 'ja-Jpan-JP', 'ja-Kana-JP'] as const;
export type NameForm = (typeof NAME_FORMS)[number];

/** How many tags of claims_locales are read: a preference list, never long in practice. */
const MAX_TAGS = 8;

/**
 * The name forms a claims_locales value (BCP 47 tags by preference) asks for, best first. "ja",
 * "ja-JP" and "ja-Jpan" mean the Japanese script; a Kana, Hira or Hrkt script subtag the reading;
 * "en" or a Latn script subtag the Latin script. Other languages are passed over, as OIDC Core
 * says: an unsupported locale is no error.
 */
export function requestedForms(claimsLocales: unknown): NameForm[] {
  if (typeof claimsLocales !== 'string') return [];
  const forms: NameForm[] = [];
  for (const tag of claimsLocales.split(' ').slice(0, MAX_TAGS)) {
    const [language, ...subtags] = tag.toLowerCase().split('-');
    let form: NameForm | undefined;
    if (language === 'en' || (language === 'ja' && subtags.includes('latn'))) form = 'en';
    else if (language === 'ja') form = subtags.some((s) => s === 'kana' || s === 'hira' || s === 'hrkt') ? 'ja-Kana-JP' : 'ja-Jpan-JP';
    if (form && !forms.includes(form)) forms.push(form);
  }
  return forms;
}

/**
 * Where the forms travel. claims_locales is a parameter of the authorization request, but ID
 * tokens are made at the token endpoint (later, from the code, or from a refresh token) and
 * userinfo answers from an access token. The provider carries the request's claims object in
 * each of them, so the forms ride in it under this member, which OIDC Core 5.5 lets an OP ignore
 * and the provider's claim filters never read.
 */
const MEMBER = 'claims_locales';

/**
 * Puts the authorization request's forms into its claims object, before the provider makes the
 * code (or device code) from it. Runs on every authorization that reaches a signed-in account
 * (the provider's loadExistingGrant, see provider.ts); a member of the same name sent by the
 * relying party inside its claims parameter is replaced.
 */
export function carryClaimsLocales(ctx: KoaContextWithOIDC): void {
  const claims = ctx.oidc.claims as Record<string, unknown> | undefined;
  if (!claims) return;
  const forms = requestedForms(ctx.oidc.params?.claims_locales);
  if (forms.length) claims[MEMBER] = forms;
  else delete claims[MEMBER];
}

/** The forms a token (code, access or refresh token) carries from its authorization request. */
export function carriedForms(source: { claims?: unknown } | undefined): NameForm[] {
  const carried = (source?.claims as Record<string, unknown> | undefined)?.[MEMBER];
  return Array.isArray(carried) ? carried.filter((form): form is NameForm => NAME_FORMS.includes(form)) : [];
}
