/**
 * Command-line scanning with the rules of Go's `flag` package, which etcd uses:
 * `-f v`, `--f v`, `-f=v`, `--f=v`; bool flags take no separate argument (`--f`, `--f=false`);
 * a value may itself start with '-'; parsing stops at the first non-flag argument or `--`;
 * `-h`/`-help` ask for usage. Error texts are Go's.
 */
import type { FlagValue } from './config.js';
import { convertText } from './convert.js';
import { ConfigError, ValueError, goQuote } from './errors.js';
import { LEGACY_IGNORED_FLAGS, findFlag } from './flags.js';

export interface ArgSetting {
  /** Flag name as spelled (may be an old alias). */
  name: string;
  /** Text as given ('true' for a bare bool flag). */
  text: string;
  value: FlagValue;
}

export interface ScannedArgs {
  /** In command-line order; a repeated flag appears several times (the last one wins). */
  settings: ArgSetting[];
  /** etcd 0.4 flags that were given and are ignored. */
  legacyIgnored: string[];
  /** Arguments left after the flags (etcd refuses any). */
  positional: string[];
  /** `-h`, `-help` or `--help` was seen (scanning stopped there). */
  helpRequested: boolean;
}

function syntaxError(message: string): ConfigError {
  return new ConfigError(message, { exitCode: 2, showUsage: true });
}

function isBoolLike(name: string): boolean {
  return LEGACY_IGNORED_FLAGS.has(name) || findFlag(name)?.type === 'bool';
}

function convertArg(name: string, text: string): FlagValue {
  const spec = findFlag(name);
  if (spec === undefined) throw new Error(`convertArg: unknown flag ${name}`);
  try {
    return convertText(spec, text);
  } catch (e) {
    if (!(e instanceof ValueError)) throw e;
    if (spec.type === 'bool') throw syntaxError(`invalid boolean value ${goQuote(text)} for -${name}: ${e.message}`);
    throw syntaxError(`invalid value ${goQuote(text)} for flag -${name}: ${e.message}`);
  }
}

export function scanArgs(argv: readonly string[]): ScannedArgs {
  const out: ScannedArgs = { settings: [], legacyIgnored: [], positional: [], helpRequested: false };
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (arg.length < 2 || arg[0] !== '-') break;
    let dashes = 1;
    if (arg[1] === '-') {
      dashes = 2;
      if (arg.length === 2) {
        i++; // "--" ends the flags; what follows is positional
        break;
      }
    }
    let name = arg.slice(dashes);
    if (name.length === 0 || name[0] === '-' || name[0] === '=') throw syntaxError(`bad flag syntax: ${arg}`);
    i++;
    let text: string | undefined;
    const eq = name.indexOf('=', 1);
    if (eq >= 1) {
      text = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const known = findFlag(name) !== undefined || LEGACY_IGNORED_FLAGS.has(name);
    if (!known) {
      if (name === 'help' || name === 'h') {
        out.helpRequested = true;
        return out;
      }
      throw syntaxError(`flag provided but not defined: -${name}`);
    }
    if (isBoolLike(name)) {
      text ??= 'true';
    } else if (text === undefined) {
      if (i >= argv.length) throw syntaxError(`flag needs an argument: -${name}`);
      text = argv[i]!;
      i++;
    }
    if (LEGACY_IGNORED_FLAGS.has(name)) {
      out.legacyIgnored.push(name);
      continue;
    }
    out.settings.push({ name, text, value: convertArg(name, text) });
  }
  out.positional = argv.slice(i);
  return out;
}
