// Preloaded into a node process (`node --import ./testkit/count-scrypt.mjs main.js`): prints one
// line `scrypt N=<work factor>` on stderr for every scrypt the process starts, so that a test can
// count what the real node derives (at start-up, per login) without a hook in the node's code.
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';

const scrypt = crypto.scrypt;
crypto.scrypt = function countedScrypt(password, salt, keylen, options, callback) {
  process.stderr.write(`scrypt N=${typeof options === 'object' && options ? (options.N ?? options.cost) : 'default'}\n`);
  return scrypt.call(this, password, salt, keylen, options, callback);
};
// `import { scrypt } from 'node:crypto'` in the node's modules reads the patched function.
syncBuiltinESMExports();
