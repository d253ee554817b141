import { nameIdSettingOf, type NameIdSetting } from './attributes.ts';
import type { RequestedSubject } from './authn-request.ts';
import { NAMEID_FORMAT, STATUS } from './constants.ts';
import type { StatusResponseInput } from './response.ts';

/** Who an answer must be about: the person whose NameID at this SP, in this format, is this value. */
export interface SubjectRequirement {
  setting: Exclude<NameIdSetting, 'transient'>;
  value: string;
}

/**
 * What a request naming its Subject (core 3.4.1) requires of the answer, or the status that refuses
 * it at once, before anyone signs in. Akamon recognises only the NameID it gives this SP: in the
 * registered format (which an unspecified one means), with no other IdP's or SP's qualifier. Another
 * format would let the SP test whether the person has an identifier it is not registered to get (an
 * address); a transient NameID names no one after the assertion it came in.
 */
export function subjectRequirement(
  requested: RequestedSubject,
  registered: NameIdSetting,
  names: { idp: string; sp: string },
): { require: SubjectRequirement } | { refuse: StatusResponseInput['status'] } {
  if ('unreadable' in requested) {
    return { refuse: { top: STATUS.requester, second: STATUS.requestUnsupported, message: `a Subject by ${requested.unreadable}: only a plain NameID can be read` } };
  }
  const { value, format, nameQualifier, spNameQualifier, spProvidedId } = requested.nameId;
  const setting = format === null || format === NAMEID_FORMAT.unspecified ? registered : nameIdSettingOf(format);
  const unknown = (message: string) => ({ refuse: { top: STATUS.requester, second: STATUS.unknownPrincipal, message } });
  if (setting !== registered) return unknown(`a Subject NameID of another format than this SP's (${registered})`);
  if (setting === 'transient') return unknown('a transient Subject NameID names no one after the assertion it came in');
  if ((nameQualifier !== null && nameQualifier !== names.idp) || (spNameQualifier !== null && spNameQualifier !== names.sp) || spProvidedId !== null) {
    return unknown('a Subject NameID qualified for another IdP or SP, or with an SPProvidedID, is not one this IdP gave this SP');
  }
  return { require: { setting, value } };
}
