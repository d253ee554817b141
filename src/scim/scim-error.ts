import type { ScimType } from '../http/scim-answer.ts';

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
