// Errors a user can cause (a bad config field, a malformed trace line, an unknown preset).
// The CLI prints their message alone, without a stack trace, and exits non-zero.

export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** A command line the CLI cannot run: a bad option value, an option that does not apply. Exit 2. */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
