#!/usr/bin/env bash
# The test command: install what is missing, build, run every test (real redis-server, nginx,
# prometheus, k6 and chromium on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"
npm run -s build
npx tsc -p tsconfig.test.json   # tests and infra scripts are type-checked too
npm run -s lint                 # ESLint (typescript-eslint) and Prettier
exec npx vitest run "$@"
