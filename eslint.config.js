// Lint for every package's sources and tests (npm test runs it: `npm run lint`).
// typescript-eslint's recommended rules, with these project choices:
// - non-null assertions are allowed: noUncheckedIndexedAccess is on, and `!` marks the checked cases;
// - unused variables are errors unless named `_…` (deliberately ignored destructured fields).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '.run/**', 'reports/**', 'test-artifacts/**', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests read arbitrary JSON bodies.
    files: ['services/*/test/**', 'testkit/**', 'infra/**/*.test.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // The demo page runs in a browser; k6 scripts run in k6 (its globals: __ENV, __VU, open).
    files: ['services/app/public/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['loadtest/**/*.js'],
    languageOptions: { globals: { __ENV: 'readonly', __VU: 'readonly', __ITER: 'readonly', open: 'readonly' } },
  },
);
