/**
 * The session building blocks other packages may use on purpose (the benchmark measures the
 * stores directly): the stores, the codec, the merge policy and a no-op observer. Anything not
 * exported here is internal to the node.
 */
export { createCodec, type CookieDefaults, type SessionCodec } from './stores/codec.js';
export { LocalSessionStore } from './stores/local-store.js';
export { appMergePolicy, lastWriteWins, type MergePolicy } from './stores/merge.js';
export { noopObserver, type StoreObserver } from './stores/observer.js';
export { SESSION_PREFIX } from './modes/shared.js';
export { SharedSessionStore } from './stores/shared-store.js';
