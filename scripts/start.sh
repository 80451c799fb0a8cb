#!/usr/bin/env bash
# The main job: install what running needs and is missing, build, and run the whole local cluster in the foreground
# (Redis, 3 nodes in shared mode, nginx on 127.0.0.1:8080, Prometheus and exporters). Ctrl-C stops it.
# Extra arguments go to `cluster up`, e.g.: npm start -- --mode sticky --nodes 5 --port 9090
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh run
node scripts/build-if-stale.mjs
exec node services/cluster/dist/cli.js up "$@"
