// How an error reaches the user: one line on stderr (followed by the usage after bad usage), or,
// with --json, one JSON document `{ "error": { "code", "message" } }` on stderr; the stack only with
// --debug. The caller scrubs secrets; this module also escapes control characters.
import { InvalidOptionError } from '../core/options.js';
import { M2MError } from '../errors.js';
import { EXIT_FAILURE, EXIT_USAGE, type CliIo } from './command.js';
import { CliError, UsageError } from './errors.js';

/** What is reported of an error: a stable code, a message, the usage for bad usage, the exit code. */
export interface ErrorReport {
  code: string;
  message: string;
  usage?: string;
  exitCode: number;
}

/** The report of any error a command may throw. */
export function describeError(err: unknown): ErrorReport {
  if (err instanceof UsageError) return { code: err.code, message: err.message, usage: err.usage, exitCode: EXIT_USAGE };
  if (err instanceof CliError || err instanceof M2MError || err instanceof InvalidOptionError) {
    return { code: err.code, message: err.message, exitCode: EXIT_FAILURE };
  }
  const message = err instanceof Error ? `unexpected ${err.name}: ${err.message}` : `unexpected error: ${String(err)}`;
  return { code: 'ERR_M2M_INTERNAL', message, exitCode: EXIT_FAILURE };
}

function stackText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let text = err.stack ?? err.message;
  for (let cause = err.cause, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    text += `\nCaused by: ${cause.stack ?? cause.message}`;
  }
  return text;
}

const escape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
// Characters a terminal acts on: C0 and C1 controls, line and paragraph separators, bidi controls.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const TERMINAL_CONTROLS = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const LEFT_BY_JSON = /[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Options of {@link reportError}. */
export interface ReportOptions {
  json: boolean;
  debug: boolean;
  /** Removes secrets (passwords of database URLs, the key encryption key) from a text. */
  scrub(text: string): string;
}

/** Writes `err` to `io.stderr` as the options say, and returns the exit code. */
export function reportError(err: unknown, io: CliIo, options: ReportOptions): number {
  const report = describeError(err);
  if (options.json) {
    const error = { code: report.code, message: options.scrub(report.message), ...(options.debug ? { stack: options.scrub(stackText(err)) } : {}) };
    io.stderr.write(`${JSON.stringify({ error }, null, 2).replace(LEFT_BY_JSON, escape)}\n`);
  } else {
    const text = options.scrub(options.debug ? stackText(err) : report.message);
    io.stderr.write(`express-m2m: ${text.replace(TERMINAL_CONTROLS, escape)}\n`);
    if (report.usage !== undefined) io.stderr.write(`\n${report.usage}`);
  }
  return report.exitCode;
}
