// Errors a user can cause (a bad config field, a malformed trace line, an unknown preset).
// The CLI prints their message alone, without a stack trace, and exits non-zero.

export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}
