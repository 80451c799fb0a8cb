/** Free ports and polling, as the cluster runner uses them. */
export { freePort, sleep, waitFor } from '../services/cluster/src/lib/ports.js';
export { signal, terminate, waitGone } from '../services/cluster/src/lib/pids.js';
