import { type ParseArgsConfig, parseArgs } from 'node:util';
import { parseDurationS } from '@session-cluster/app/duration';

/**
 * One way to parse options for the project's command-line tools (cluster, experiment, bench,
 * soak), with one set of exit codes:
 *   0  done (every claim held)
 *   1  the work ran and failed (a part did not start, a claim did not hold)
 *   2  usage: an unknown or malformed option, named in the message
 *   130 interrupted (SIGINT/SIGTERM)
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** A mistake in the command line; the tool prints the message (and its usage) and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs, strict, with its errors turned into UsageErrors naming the option. */
export function parseOptions<O extends Options>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function intOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

/** A TCP port to listen on: 1-65535 (0, "let the kernel pick", is refused: the URL must be known). */
export function portOption(name: string, value: string | undefined, fallback: number): number {
  return intOption(name, value, fallback, 1, 65535);
}

/** Seconds, in the project's one duration format (90, 90s, 1m30s, 30m, 8h, 1d; see app/src/duration.ts). */
export function durationOption(name: string, value: string | undefined, fallback: string): number {
  const v = value ?? fallback;
  try {
    return parseDurationS(v);
  } catch (err) {
    throw new UsageError(`--${name} ${(err as Error).message}`);
  }
}

export function choiceOption<T extends string>(name: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got "${value}"`);
  return value as T;
}

/**
 * A reader that stops early (`ps | head`) closes the pipe: further writes fail with EPIPE. That is
 * not an error of the tool: it exits quietly, with success.
 */
export function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(EXIT.ok);
      throw err;
    });
  }
}

/**
 * Runs a tool's main(): its resolved number is the exit code; a UsageError prints the message
 * (and the usage) and exits 2; any other error prints its message and exits 1.
 */
export function runCli(prefix: string, usage: string, main: () => Promise<number | undefined>): void {
  quietOnClosedPipe();
  main().then(
    (code) => process.exit(code ?? EXIT.ok),
    (err: Error) => {
      if (err instanceof UsageError) {
        process.stderr.write(`[${prefix}] error: ${err.message}\n${usage}\n`);
        process.exit(EXIT.usage);
      }
      process.stderr.write(`[${prefix}] error: ${err.message}\n`);
      process.exit(EXIT.failed);
    },
  );
}
