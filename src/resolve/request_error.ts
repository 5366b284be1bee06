/**
 * The error of a request that cannot be parsed or matches nothing, shared by the
 * request, version and catalog modules.
 *
 * @module
 */
import { PyprimeError, type PyprimeErrorOptions } from "../errors.ts";

/** The forms a request may take, for hints. */
export const ACCEPTED_FORMS = "use a version (3, 3.13, 3.13.9, 3.14.0rc2), a variant (3.13t, " +
  "3.13+freethreaded, 3.13+debug), specifiers (>=3.12,<3.14), a key " +
  "(cpython-3.13.9-linux-x86_64-gnu), an archive path (.tar.gz, .tar.zst), - for stdin, " +
  "or an http(s):// or file:// URL";

/** A request that cannot be parsed or matches nothing; `hint` says what would work. */
export class RequestError extends PyprimeError {
  /** Creates the error; the hint defaults to the accepted request forms. */
  constructor(message: string, options: PyprimeErrorOptions = {}) {
    super(message, { hint: ACCEPTED_FORMS, exitCode: 2, ...options });
    this.name = "RequestError";
  }
}
