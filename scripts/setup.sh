#!/usr/bin/env bash
# Installs what session-cluster needs on a Debian machine, and nothing that is already there:
#   npm dependencies; Debian's redis-server, nginx, prometheus and the two exporters, chromium, wrk;
#   k6 (built with Go, pinned) and grafana's dashboard-linter.
# Run as root to install system packages; otherwise it names what is missing and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

K6_VERSION=v1.8.1                 # go.k6.io/k6, the v1 line
# github.com/grafana/dashboard-linter has no tags and the module proxy here serves no version list,
# so an exact pseudo-version is fetched, checked against a pinned hash, and built in place.
DASHBOARD_LINTER_VERSION=v0.0.0-20241224134444-1765d94aec4a
DASHBOARD_LINTER_SUM=h1:wpyAYX8+Rqu0LIEE7zXBR/qjBH4t0yXvqlRGa1wD5rg=
GOBIN_DIR="${GOBIN:-$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin}"
say() { printf '[setup] %s\n' "$*"; }

# 1. Node and npm dependencies.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "[setup] Node.js 20 or newer is required (found: $(node -v 2>/dev/null || echo none))" >&2; exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# 2. Debian packages: binary -> package.
declare -A PKG=(
  [redis-server]=redis-server
  [nginx]=nginx-light
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-nginx-exporter]=prometheus-nginx-exporter
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [chromium]=chromium
  [wrk]=wrk
)
missing=()
for bin in "${!PKG[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${PKG[$bin]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    echo "[setup] missing Debian packages: ${missing[*]}" >&2
    echo "[setup] install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  say "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts these as services on install; the project runs its own instances on free ports.
  for svc in redis-server nginx prometheus prometheus-nginx-exporter prometheus-redis-exporter; do
    (service "$svc" stop || true) >/dev/null 2>&1
  done
fi

# 3. Go tools: k6 (real, pinned) and the dashboard linter.
export PATH="$GOBIN_DIR:$PATH"
need_go() {
  command -v go >/dev/null 2>&1 && return 0
  echo "[setup] Go is needed to build $1 (apt-get install golang-go, or see https://go.dev/doc/install); or put a $1 binary on PATH" >&2
  exit 1
}
if ! k6 version 2>/dev/null | grep -q "${K6_VERSION}"; then
  need_go k6
  say "go install go.k6.io/k6@${K6_VERSION} (takes a few minutes the first time)"
  go install "go.k6.io/k6@${K6_VERSION}"
fi
if ! command -v dashboard-linter >/dev/null 2>&1; then
  need_go dashboard-linter
  say "building github.com/grafana/dashboard-linter@${DASHBOARD_LINTER_VERSION} (a few minutes the first time)"
  mkdir -p "$GOBIN_DIR"
  sum=$(GONOSUMDB=github.com/grafana/dashboard-linter go mod download -json "github.com/grafana/dashboard-linter@${DASHBOARD_LINTER_VERSION}" \
    | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')
  if [ "$sum" != "$DASHBOARD_LINTER_SUM" ]; then
    echo "[setup] dashboard-linter: checksum mismatch (got '$sum', want $DASHBOARD_LINTER_SUM)" >&2; exit 1
  fi
  (cd "$(go env GOMODCACHE)/github.com/grafana/dashboard-linter@${DASHBOARD_LINTER_VERSION}" && go build -o "$GOBIN_DIR/dashboard-linter" .)
fi
say "ready: $(redis-server --version | awk '{print $3}') nginx $(nginx -v 2>&1 | sed 's/.*\///') $(k6 version | awk '{print $1, $2}')"
