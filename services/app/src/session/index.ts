/**
 * The session building blocks other packages may use on purpose (the benchmark measures the
 * stores directly): the stores, the codec, the merge policy and a no-op observer. Anything not
 * exported here is internal to the node.
 */
export { createCodec, type CookieDefaults, type SessionCodec } from './codec.js';
export { LocalSessionStore } from './local-store.js';
export { appMergePolicy, lastWriteWins, type MergePolicy } from './merge.js';
export { noopObserver, type StoreObserver } from './observer.js';
export { SESSION_PREFIX } from './modes/shared.js';
export { SharedSessionStore } from './shared-store.js';
