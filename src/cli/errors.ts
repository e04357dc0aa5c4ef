/**
 * Errors raised while reading the command line, the environment or the config file.
 *
 * The message is worded the way etcd words it, so that operators (and scripts that grep
 * etcd's output) see the same text. `exitCode` follows etcd: 2 for a command line that Go's
 * flag package would reject (etcd prints its usage and exits 2), 1 for a configuration that
 * parses but does not validate.
 */
export class ConfigError extends Error {
  readonly exitCode: 1 | 2;
  /** True when etcd would print its usage text after the message (flag syntax errors). */
  readonly showUsage: boolean;

  constructor(message: string, opts: { exitCode?: 1 | 2; showUsage?: boolean } = {}) {
    super(message);
    this.name = 'ConfigError';
    this.exitCode = opts.exitCode ?? 1;
    this.showUsage = opts.showUsage ?? false;
  }
}

/**
 * A value that could not be converted to its flag's type. Callers wrap the reason into a
 * message that names where the value came from (flag, environment variable, config file).
 */
export class ValueError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'ValueError';
  }
}

/** Go's `%q` for a string: a double-quoted literal with escapes (JSON's rules are close enough). */
export function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** Go's `%q` applied to a []string: `["a" "b"]`. */
export function goQuoteList(items: readonly string[]): string {
  return `[${items.map(goQuote).join(' ')}]`;
}
