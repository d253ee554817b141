/** RFC 7644 3.12: the error message schema. */
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** RFC 7644 3.1: SCIM's media type, for every answer under /scim. */
export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';

/** The scimType values of RFC 7644 3.12 that Akamon answers with. */
export type ScimType = 'invalidFilter' | 'tooMany' | 'uniqueness' | 'mutability' | 'invalidSyntax' | 'invalidPath' | 'noTarget' | 'invalidValue' | 'invalidVers';

/**
 * The error document (RFC 7644 3.12; `status` is a string), for the SCIM service and for the input
 * guard that refuses a body before it reaches it.
 */
export function scimErrorBody(status: number, scimType: ScimType | undefined, detail: string) {
  return { schemas: [ERROR_SCHEMA], status: String(status), ...(scimType ? { scimType } : {}), detail };
}
