#!/usr/bin/env bash
# Installs what session-cluster needs on a Debian machine, for one purpose, and nothing that is
# already there:
#   setup.sh run    (npm start) npm dependencies; Debian's redis-server, nginx, prometheus and the
#                   two exporters, postgresql (database mode)
#   setup.sh test   (npm test) the same, and chromium, wrk; built with Go: k6 and grafana's
#                   dashboard-linter, and Prometheus and both exporters at the releases
#                   docker-compose.yml pins (into .run/bin); for the live compose test, Debian's
#                   docker.io (dockerd 20.10) and debootstrap, and a Docker Compose v2 plugin: the
#                   user's own when it is recent enough (never replaced), else one built with Go
#                   (pinned) under .run/docker-config
# Run as root to install system packages; otherwise it names what is missing and stops. On a
# machine without apt-get it stops at once and says what to install, or to use Docker instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PURPOSE=${1:-test}
case "$PURPOSE" in run|test) ;; *) echo "usage: scripts/setup.sh run|test" >&2; exit 2 ;; esac

K6_VERSION=v1.8.1                 # go.k6.io/k6, the v1 line
# github.com/grafana/dashboard-linter has no tags and the module proxy here serves no version list,
# so an exact pseudo-version is fetched, checked against a pinned hash, and built in place.
DASHBOARD_LINTER_VERSION=v0.0.0-20241224134444-1765d94aec4a
DASHBOARD_LINTER_SUM=h1:wpyAYX8+Rqu0LIEE7zXBR/qjBH4t0yXvqlRGa1wD5rg=
# Docker Compose v2 (Debian 12 has only compose v1, which rejects the top-level `name:`), built from
# the Go module proxy into the user's CLI plugin directory, checked against a pinned hash.
COMPOSE_VERSION=v2.29.7
COMPOSE_SUM=h1:92dZa2M71isE1Qi6D7z1i+0P1pyeyWMwrxBuRIXe52w=
COMPOSE_MIN=2.21.0                # `ps --format json` one object per line; `up --wait`
# The private plugin, when the user has no Compose v2 that is recent enough: scripts/test.sh points
# DOCKER_CONFIG here for the tests, and the user's own ~/.docker is never written.
PRIVATE_DOCKER_CONFIG="$PWD/.run/docker-config"
COMPOSE_PLUGIN="$PRIVATE_DOCKER_CONFIG/cli-plugins/docker-compose"
GOBIN_DIR="${GOBIN:-$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin}"
say() { printf '[setup] %s\n' "$*"; }

# 1. Debian packages: binary -> package. Running the cluster needs the first group; the tests, all.
declare -A PKG=(
  [redis-server]=redis-server
  [nginx]=nginx-light
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-nginx-exporter]=prometheus-nginx-exporter
  [prometheus-redis-exporter]=prometheus-redis-exporter
  # database mode (PostgreSQL 15 on Debian 12; its server binaries live in /usr/lib/postgresql/<v>/bin).
  [pg_ctlcluster]=postgresql
)
if [ "$PURPOSE" = test ]; then
  PKG+=(
    [chromium]=chromium
    [wrk]=wrk
    # The live compose test (infra/test/heavy/compose-live.test.ts): a private engine and stand-in images.
    [dockerd]=docker.io
    [debootstrap]=debootstrap
  )
fi
missing=()
for bin in "${!PKG[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${PKG[$bin]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "[setup] this machine has no apt-get: the local path installs Debian packages, and these are missing: ${missing[*]}" >&2
    echo "[setup] install their equivalents with your package manager, or use the Docker path, which needs only Docker: docker compose up -d --build --wait (README.md)" >&2
    exit 1
  fi
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
  # Likewise the engine docker.io starts, only when this run installed it (an engine that was
  # there before is the user's): the compose test runs its own (infra/docker/engine.sh), which
  # refuses to run beside another dockerd.
  if [[ " ${missing[*]} " == *" docker.io "* ]]; then
    for svc in docker.socket docker containerd; do (service "$svc" stop || true) >/dev/null 2>&1; done
  fi
fi

# 2. Node and npm dependencies (after the system check, so that a machine without apt stops first).
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "[setup] Node.js 20 or newer is required (found: $(node -v 2>/dev/null || echo none))" >&2; exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ "$PURPOSE" = run ]; then
  say "ready to run: $(redis-server --version | awk '{print $3}') nginx $(nginx -v 2>&1 | sed 's/.*\///')"
  exit 0
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
# 4. Prometheus and the two exporters at the versions docker-compose.yml pins, so that every test
#    (the local runner's monitoring, the dashboards' queries, the compose stand-ins) runs what a
#    Docker user pulls. Built from the Go module proxy (checked against Go's checksum database) into
#    .run/bin, which vitest.config.ts puts first on PATH; Debian's packages above stay what
#    `npm start` uses.
pinned() { sed -n "s|^[[:space:]]*image: $1:v\{0,1\}\([0-9][0-9.]*\)\$|\1|p" docker-compose.yml | head -n1; }
PROMETHEUS_VERSION=$(pinned prom/prometheus)
NGINX_EXPORTER_VERSION=$(pinned nginx/nginx-prometheus-exporter)
REDIS_EXPORTER_VERSION=$(pinned oliver006/redis_exporter)
for v in PROMETHEUS_VERSION NGINX_EXPORTER_VERSION REDIS_EXPORTER_VERSION; do
  [ -n "${!v}" ] || { echo "[setup] no pinned version for $v in docker-compose.yml" >&2; exit 1; }
done
PINNED_BIN="$PWD/.run/bin"
mkdir -p "$PINNED_BIN"
# build NAME MODULE@VERSION PACKAGE VERSION-VARIABLE VERSION: go install's build, stamped with the
# release's version the way the official release build stamps it (the binary's build_info metric).
build_pinned() {
  local name=$1 modver=$2 pkg=$3 var=$4 version=$5 mod=${2%@*}
  if [ -x "$PINNED_BIN/$name" ] && "$PINNED_BIN/$name" --version 2>&1 | grep -qE "(version|Exporter) v?${version#v}( |\$)"; then
    return 0
  fi
  need_go "$name"
  say "building $name $version from $modver (a few minutes the first time)"
  go mod download "$modver" >/dev/null
  (cd "$(go env GOMODCACHE)/$(echo "$mod" | sed 's/[A-Z]/!\L&/g')@${modver#*@}" \
    && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X $var=$version" -o "$PINNED_BIN/$name.tmp" "./$pkg") \
    && mv "$PINNED_BIN/$name.tmp" "$PINNED_BIN/$name"
}
# Prometheus v3.X.Y is the Go module version v0.3XX.Y.
prom_module=$(echo "$PROMETHEUS_VERSION" | awk -F. '{printf "v0.%d.%d", 300 + $2, $3}')
build_pinned prometheus "github.com/prometheus/prometheus@$prom_module" cmd/prometheus \
  github.com/prometheus/common/version.Version "$PROMETHEUS_VERSION"
build_pinned promtool "github.com/prometheus/prometheus@$prom_module" cmd/promtool \
  github.com/prometheus/common/version.Version "$PROMETHEUS_VERSION"
build_pinned nginx-prometheus-exporter "github.com/nginx/nginx-prometheus-exporter@v$NGINX_EXPORTER_VERSION" . \
  github.com/prometheus/common/version.Version "$NGINX_EXPORTER_VERSION"
build_pinned redis_exporter "github.com/oliver006/redis_exporter@v$REDIS_EXPORTER_VERSION" . \
  main.BuildVersion "v$REDIS_EXPORTER_VERSION"

# 5. Docker Compose v2 (the live compose test; `docker compose` is what the README documents): the
#    user's own when it is at least COMPOSE_MIN, else a private one built from the Go module proxy.
compose_version() { docker compose version --short 2>/dev/null | sed 's/^v//'; }
recent_enough() { [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$COMPOSE_MIN" "$1" | sort -V | head -n1)" = "$COMPOSE_MIN" ]; }
if ! recent_enough "$(compose_version)" && ! recent_enough "$(DOCKER_CONFIG=$PRIVATE_DOCKER_CONFIG compose_version)"; then
  need_go "the docker compose plugin"
  say "no Docker Compose >= ${COMPOSE_MIN}: building github.com/docker/compose/v2@${COMPOSE_VERSION} into ${COMPOSE_PLUGIN} (a few minutes the first time)"
  sum=$(go mod download -json "github.com/docker/compose/v2@${COMPOSE_VERSION}" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')
  if [ "$sum" != "$COMPOSE_SUM" ]; then
    echo "[setup] docker compose: checksum mismatch (got '$sum', want $COMPOSE_SUM)" >&2; exit 1
  fi
  mkdir -p "$(dirname "$COMPOSE_PLUGIN")"
  (cd "$(go env GOMODCACHE)/github.com/docker/compose/v2@${COMPOSE_VERSION}" \
    && go build -trimpath -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=${COMPOSE_VERSION}" -o "$COMPOSE_PLUGIN.tmp" ./cmd) \
    && mv "$COMPOSE_PLUGIN.tmp" "$COMPOSE_PLUGIN"
fi
# The marker tells scripts/test.sh to point DOCKER_CONFIG at the private plugin.
if recent_enough "$(compose_version)"; then
  rm -f "$PRIVATE_DOCKER_CONFIG/use"
else
  export DOCKER_CONFIG=$PRIVATE_DOCKER_CONFIG
  touch "$PRIVATE_DOCKER_CONFIG/use"
fi
say "ready: $(redis-server --version | awk '{print $3}') nginx $(nginx -v 2>&1 | sed 's/.*\///') prometheus $PROMETHEUS_VERSION (.run/bin) $(k6 version | awk '{print $1, $2}') dockerd $(dockerd --version | awk '{print $3}' | tr -d ,) compose $(docker compose version --short)"
