/**
 * A failure the person or operator can act on. It carries a snake_case code and never an HTTP
 * status: the http layer and the CLI map codes to status, page text or exit code.
 */
export class DomainError extends Error {
  override name = 'DomainError';
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

/** Too much work already queued (password hashing): the caller should retry after a moment. */
export class OverloadedError extends DomainError {
  readonly retryAfterSeconds: number;

  constructor(retryAfterSeconds: number) {
    super('overloaded', 'the server is busy; try again shortly');
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
