/** RFC 7644 3.12: the error message schema. */
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** The scimType values of RFC 7644 3.12 that Akamon answers with. */
export type ScimType = 'invalidFilter' | 'tooMany' | 'uniqueness' | 'mutability' | 'invalidSyntax' | 'invalidPath' | 'noTarget' | 'invalidValue' | 'invalidVers';

/** A refusal in SCIM's own terms: an HTTP status, the scimType where the RFC defines one, and the text. */
export class ScimError extends Error {
  override name = 'ScimError';
  readonly status: number;
  readonly scimType: ScimType | undefined;

  constructor(status: number, scimType: ScimType | undefined, detail: string) {
    super(detail);
    this.status = status;
    this.scimType = scimType;
  }
}

export const invalidValue = (detail: string): never => {
  throw new ScimError(400, 'invalidValue', detail);
};

/** The error document: `status` is a string (RFC 7644 3.12). */
export function errorBody(status: number, scimType: ScimType | undefined, detail: string) {
  return { schemas: [ERROR_SCHEMA], status: String(status), ...(scimType ? { scimType } : {}), detail };
}
