import { AppError } from '../../errors.js';
import type { UserSessionIndex } from '../user-index/user-index.js';

/**
 * The per-user index of a mode that keeps no sessions on the server: there is nothing to add,
 * remove or list. `endAll` is given when the mode can still end every session (jwt: a per-user
 * cut-off); otherwise it is 501 NOT_IN_MODE too.
 */
export function noIndex(mode: string, endAll?: (user: string) => Promise<void>): UserSessionIndex {
  const notInMode = (what: string) => new AppError('NOT_IN_MODE', `${mode} mode keeps no sessions on the server: it cannot ${what}.`);
  return {
    scope: 'cluster',
    add: async () => [],
    remove: async () => {},
    list: async () => {
      throw notInMode('list them');
    },
    endAll: async (user) => {
      if (!endAll) throw notInMode('end them all');
      await endAll(user);
      return null;
    },
  };
}
