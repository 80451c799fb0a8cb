import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { secretProblems, secretsOfFile } from './config.js';

/**
 * The compose stack's one-shot `secrets` service (docker-compose.yml): it puts the nodes' session
 * signing secrets into the `session-secrets` volume before any node starts, so that
 * `docker compose up` needs no step before it, whatever uid runs Docker, and no secret is ever in
 * an image or in the environment.
 *
 *   init    your own file (SEED, if it exists) is checked and copied in; else the volume's secrets
 *           are kept; else one is generated (32 random bytes, 64 hex characters)
 *   rotate  a new secret first, the previous ones after it (cookies signed with them still verify),
 *           at most MAX_KEPT in all; refused when the secrets come from your own file (edit it)
 *
 * The file is written whole (a temporary file renamed over it), mode 0400, owned by the nodes'
 * user (APP_UID): the service runs as root, the nodes as `node`. Exit codes: 0 done, 1 failed (the
 * message says why), 2 usage.
 */
export const MAX_KEPT = 5;

export interface SecretsPaths {
  /** The file the nodes read (SESSION_SECRETS_FILE), in the volume. */
  target: string;
  /** Your own secrets file, if you bring one (SESSION_SECRETS_DIR/session_secrets on the host). */
  seed: string;
  /** The nodes' uid; null leaves the owner as it is (a run that is not root). */
  uid: number | null;
}

export class SecretsError extends Error {}

const newSecret = () => randomBytes(32).toString('hex');

function readSecrets(file: string): string[] | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SecretsError(`${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return secretsOfFile(text);
}

function check(secrets: string[], from: string): void {
  const problems = secretProblems(secrets);
  if (problems.length) throw new SecretsError(`${from} ${problems.join('; ')}`);
}

function write(p: SecretsPaths, secrets: string[]): void {
  fs.mkdirSync(path.dirname(p.target), { recursive: true });
  const tmp = `${p.target}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, `${secrets.join('\n')}\n`, { mode: 0o400 });
  if (p.uid !== null) fs.chownSync(tmp, p.uid, p.uid);
  fs.renameSync(tmp, p.target);
}

/** Returns what it did, one line. */
export function initSecrets(p: SecretsPaths): string {
  const seed = readSecrets(p.seed);
  if (seed !== null) {
    check(seed, `${p.seed} (your own secrets file)`);
    write(p, seed);
    return `session secrets: ${seed.length} from ${p.seed}, copied into the volume`;
  }
  const kept = readSecrets(p.target);
  if (kept !== null && kept.length) {
    check(kept, `${p.target} (in the session-secrets volume)`);
    write(p, kept); // owner and mode made right again
    return `session secrets: the volume's ${kept.length} kept`;
  }
  write(p, [newSecret()]);
  return 'session secrets: one generated into the session-secrets volume (it stays there until `docker compose down -v`)';
}

export function rotateSecrets(p: SecretsPaths): string {
  if (readSecrets(p.seed) !== null) {
    throw new SecretsError(`the secrets come from your own file, ${p.seed}: put a new line first in that file and run \`docker compose up -d\``);
  }
  const kept = readSecrets(p.target) ?? [];
  const secrets = [newSecret(), ...kept].slice(0, MAX_KEPT);
  write(p, secrets);
  return `session secrets: a new one signs from now on; ${secrets.length - 1} previous kept for verifying (recreate the nodes: docker compose up -d --force-recreate --no-deps app)`;
}

function main(argv: string[]): number {
  const verb = argv[0];
  if ((verb !== 'init' && verb !== 'rotate') || argv.length > 1) {
    process.stderr.write('usage: node services/app/dist/secrets.js init|rotate   (in compose: docker compose run --rm secrets rotate)\n');
    return 2;
  }
  const uid = process.env.APP_UID ?? '1000';
  if (!/^\d{1,9}$/.test(uid)) {
    process.stderr.write(`secrets ${verb}: APP_UID must be a uid (a number), got ${JSON.stringify(uid)}\n`);
    return 2;
  }
  const p: SecretsPaths = {
    target: process.env.SESSION_SECRETS_FILE ?? '/run/session-secrets/session_secrets',
    seed: process.env.SESSION_SECRETS_SEED ?? '/seed/session_secrets',
    uid: process.getuid?.() === 0 ? Number(uid) : null,
  };
  try {
    process.stdout.write(`${verb === 'init' ? initSecrets(p) : rotateSecrets(p)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`secrets ${verb}: ${err instanceof SecretsError ? err.message : String(err)}\n`);
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
