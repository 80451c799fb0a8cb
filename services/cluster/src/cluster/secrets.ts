import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Secrets for this run: SESSION_SECRETS from the environment, or a random one kept (0600) in the run folder. */
export function sessionSecrets(dir: string): string {
  if (process.env.SESSION_SECRETS) return process.env.SESSION_SECRETS;
  const file = path.join(dir, 'session-secrets');
  if (!fs.existsSync(file)) fs.writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}
