/**
 * A failure the person or operator can act on. It carries a snake_case code and never an HTTP
 * status: the http layer and the CLI map codes to status, page text or exit code.
 */
export class DomainError extends Error {
  override name = 'DomainError';
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

/** Nothing is wrong with the request, but it cannot be served now: the caller should retry after a moment. */
export class RetryLaterError extends DomainError {
  readonly retryAfterSeconds: number;

  constructor(code: string, message: string, retryAfterSeconds: number, options?: ErrorOptions) {
    super(code, message, {}, options);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Too much work already queued (password hashing). */
export class OverloadedError extends RetryLaterError {
  constructor(retryAfterSeconds: number) {
    super('overloaded', 'the server is busy; try again shortly', retryAfterSeconds);
  }
}

/** The database cannot answer now (down, restarting, frozen, out of connections): nothing was decided. */
export class DatabaseUnavailableError extends RetryLaterError {
  constructor(cause: unknown, retryAfterSeconds: number) {
    super('database_unavailable', 'the database is temporarily unavailable; try again in a moment', retryAfterSeconds, { cause });
  }
}

/**
 * What a relying party's back-channel logout answers the provider's own end_session when Akamon
 * makes the delivery itself once the sign-out's unit of work has committed (oidc/backchannel.ts):
 * not an outcome, which listeners skip; the delivery's own is emitted when it is made.
 */
export class DeliveryDeferred extends Error {
  override name = 'DeliveryDeferred';
}
