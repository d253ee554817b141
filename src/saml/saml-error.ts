export type SamlErrorCode = 'malformed' | 'too_large' | 'forbidden_xml' | 'bad_signature' | 'unsigned' | 'unsupported';

/** Every refusal of the SAML modules. The message is English, for logs and operator-facing CLI output. */
export class SamlError extends Error {
  override name = 'SamlError';
  // A declared field rather than a constructor parameter property: erasableSyntaxOnly forbids those.
  readonly code: SamlErrorCode;
  constructor(code: SamlErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
