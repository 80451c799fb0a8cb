// The hostile-input fuzzing of fuzz.test.ts, against a database-mode node on a real PostgreSQL:
// the same cases, the same assertions (no 500, no hang, no adopted session, nothing internal served).
process.env.FUZZ_STORE = 'database';
await import('./fuzz.test.js');
