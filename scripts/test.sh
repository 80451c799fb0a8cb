#!/usr/bin/env bash
# The test command: install what is missing, build, run every test (real redis-server, nginx,
# prometheus, k6 and chromium on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
export PATH="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"
# The Docker Compose plugin setup built when the user has none recent enough (theirs is never replaced).
if [ -f .run/docker-config/use ]; then export DOCKER_CONFIG="$PWD/.run/docker-config"; fi
npm run -s build
npx tsc -p tsconfig.test.json   # tests and infra scripts are type-checked too
npm run -s lint                 # ESLint (typescript-eslint) and Prettier
exec npx vitest run "$@"
