#!/usr/bin/env bash
# Stand-in images for a Docker engine that can reach no image registry (the live compose test's
# private engine, infra/docker/engine.sh). It never pulls: it builds each image docker-compose.yml
# (and the app's Dockerfile, ARG NODE_IMAGE) names from a Debian 12 base, with Debian's packages
# (Redis, PostgreSQL, nginx) or the binaries this machine built at the pinned releases (Prometheus,
# the exporters, k6: scripts/setup.sh test), and tags it with that name, in the engine DOCKER_HOST
# points at.
#
#   DOCKER_HOST=unix://... infra/docker/standins.sh IMAGE...
#
# IMAGE: the names to provide, e.g. redis:7-alpine node:22-bookworm-slim. Each is matched to a
# target of infra/docker/standins/Dockerfile by its repository (redis, nginx, prom/prometheus,
# */nginx-prometheus-exporter, */redis_exporter, grafana/k6, node); a name with no stand-in is an
# error. Grafana has none (no Grafana build is reachable here): the test leaves it out instead.
#
# Caches, so that a second run on the same machine takes seconds, not minutes (CACHE_DIR, default
# /var/cache/session-cluster when writable, else ~/.cache/session-cluster):
#   base-<suite>-<mirror hash>.tar    debootstrap root file systems (~2 min each to make): bookworm,
#                                     and forky for nginx (the first suite with nginx >= 1.27.3)
#   standins-<key>.tar                every stand-in, `docker save`d; <key> hashes this script, the
#                                     Dockerfile, the mirror, the binaries copied in and the CA
#                                     bundle, so any change rebuilds. Older keys are deleted.
# Environment: DEBIAN_MIRROR (default: the first Debian mirror in the machine's apt sources),
# K6_BIN, PROMETHEUS_BIN, NGINX_EXPORTER_BIN, REDIS_EXPORTER_BIN (default: k6, prometheus,
# nginx-prometheus-exporter, redis_exporter on PATH), NODE_BIN (default: node on PATH), CA_BUNDLE.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
say() { printf '[standins] %s\n' "$*" >&2; }
die() { printf '[standins] %s\n' "$*" >&2; exit 1; }

[ $# -gt 0 ] || die "usage: DOCKER_HOST=... infra/docker/standins.sh IMAGE..."

if [ -z "${CACHE_DIR:-}" ]; then
  if mkdir -p /var/cache/session-cluster 2>/dev/null && [ -w /var/cache/session-cluster ]; then
    CACHE_DIR=/var/cache/session-cluster
  else
    CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/session-cluster
  fi
fi
mkdir -p "$CACHE_DIR"

# The machine's Debian mirror: what apt already uses (deb822 .sources or one-line lists).
mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' | grep -v -e security -e '^https' | grep '/debian/\?$' | head -n1 || true)
fi
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" {print $2}' | grep -v -e security -e '^https' | grep '/debian/\?$' | head -n1 || true)
fi
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*; set DEBIAN_MIRROR=http://.../debian"

k6_bin=${K6_BIN:-$(command -v k6 || true)}
prometheus_bin=${PROMETHEUS_BIN:-$(command -v prometheus || true)}
nginx_exporter_bin=${NGINX_EXPORTER_BIN:-$(command -v nginx-prometheus-exporter || true)}
redis_exporter_bin=${REDIS_EXPORTER_BIN:-$(command -v redis_exporter || true)}
node_bin=${NODE_BIN:-$(readlink -f "$(command -v node)")}
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
npm_dir=$(cd "$(dirname "$node_bin")/../lib/node_modules/npm" 2>/dev/null && pwd || true)

target_of() {
  local repo=${1%:*}
  case "$repo" in
    redis) echo redis ;;
    postgres) echo postgres ;;
    nginx) echo nginx ;;
    prom/prometheus) echo prometheus ;;
    */nginx-prometheus-exporter) echo nginx-exporter ;;
    */redis_exporter) echo redis-exporter ;;
    grafana/k6) echo k6 ;;
    node) echo node ;;
    *) return 1 ;;
  esac
}
targets=()
for image in "$@"; do
  t=$(target_of "$image") || die "no stand-in for $image (infra/docker/standins/Dockerfile has: redis postgres nginx prometheus nginx-exporter redis-exporter k6 node)"
  targets+=("$t")
  case "$t" in
    k6) [ -x "$k6_bin" ] || die "the k6 stand-in copies this machine's k6, and there is none on PATH (scripts/setup.sh builds it; or set K6_BIN)" ;;
    prometheus) [ -x "$prometheus_bin" ] || die "the prometheus stand-in copies the pinned build, and there is no prometheus on PATH (scripts/setup.sh test builds it into .run/bin; or set PROMETHEUS_BIN)" ;;
    nginx-exporter) [ -x "$nginx_exporter_bin" ] || die "the nginx-exporter stand-in copies the pinned build, and there is no nginx-prometheus-exporter on PATH (scripts/setup.sh test builds it into .run/bin; or set NGINX_EXPORTER_BIN)" ;;
    redis-exporter) [ -x "$redis_exporter_bin" ] || die "the redis-exporter stand-in copies the pinned build, and there is no redis_exporter on PATH (scripts/setup.sh test builds it into .run/bin; or set REDIS_EXPORTER_BIN)" ;;
    node) [ -x "$node_bin" ] && [ -f "$npm_dir/bin/npm-cli.js" ] || die "the node stand-in copies this machine's node and npm ($node_bin, $npm_dir): not found" ;;
  esac
done
[ -r "$ca_bundle" ] || die "CA bundle $ca_bundle not readable (apt-get install ca-certificates, or set CA_BUNDLE)"

sha() { sha256sum "$@" | awk '{print $1}' | sha256sum | cut -c1-16; }
mirror_key=$(printf '%s' "$mirror" | sha256sum | cut -c1-12)
key=$( {
  cat "$0" "$here/standins/Dockerfile"
  echo "$mirror"
  for b in "$k6_bin" "$prometheus_bin" "$nginx_exporter_bin" "$redis_exporter_bin"; do if [ -x "$b" ]; then sha256sum "$b"; fi; done
  "$node_bin" --version
  sha256sum "$ca_bundle"
} | sha256sum | cut -c1-16)
label=io.session-cluster.standin

have_all() {
  local image
  for image in "$@"; do
    [ "$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null)" = "$key" ] || return 1
  done
}
if have_all "$@"; then
  say "all present in the engine (key $key)"
  exit 0
fi

archive=$CACHE_DIR/standins-$key.tar
if [ -s "$archive" ]; then
  say "loading $archive"
  docker load -q -i "$archive" >/dev/null
  if have_all "$@"; then exit 0; fi
  say "the archive lacks some of: $*; rebuilding"
fi

# --- the Debian bases ----------------------------------------------------------------------------
# ensure_base SUITE: debootstrap SUITE once per machine (cached tar), `docker import` it once per
# engine; prints the image name. bookworm for everything; forky only for nginx (>= 1.27.3).
ensure_base() {
  local suite=$1 tar image root script=()
  tar=$CACHE_DIR/base-$suite-$mirror_key.tar
  image=session-cluster-standin/debian-base:$suite-$mirror_key
  if [ ! -s "$tar" ]; then
    command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap (scripts/setup.sh does)"
    [ "$(id -u)" -eq 0 ] || die "debootstrap needs root"
    # Debian 12's debootstrap predates forky: the suite script is the same as sid's.
    [ -e "/usr/share/debootstrap/scripts/$suite" ] || script=(/usr/share/debootstrap/scripts/sid)
    root=$(mktemp -d "$CACHE_DIR/rootfs-$suite.XXXXXX")
    say "debootstrap --variant=minbase $suite from $mirror (about 2 minutes, once per machine)"
    if ! debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
        "$suite" "$root" "$mirror" "${script[@]}" >"$CACHE_DIR/debootstrap-$suite.log" 2>&1; then
      tail -n 20 "$CACHE_DIR/debootstrap-$suite.log" >&2
      rm -rf "$root"
      die "debootstrap $suite failed (log: $CACHE_DIR/debootstrap-$suite.log)"
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" --numeric-owner -cf "$tar.tmp" .
    mv "$tar.tmp" "$tar"
    rm -rf "$root"
  fi
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    say "docker import $tar"
    docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["bash"]' "$tar" "$image" >/dev/null
  fi
  echo "$image"
}
base=$(ensure_base bookworm)
nginx_base=$base
if [[ " ${targets[*]} " == *" nginx "* ]]; then nginx_base=$(ensure_base forky); fi

# --- the stand-ins -----------------------------------------------------------------------------
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$here/standins/Dockerfile" "$ctx/Dockerfile"
cp "$ca_bundle" "$ctx/ca-certificates.crt"
# copy_in TARGET BINARY NAME: the binary when TARGET is wanted, else an empty file (every stage's COPY
# needs its source, and the legacy builder builds every stage before the target).
copy_in() { if [[ " ${targets[*]} " == *" $1 "* ]]; then cp "$2" "$ctx/$3"; else : > "$ctx/$3"; fi; }
copy_in k6 "$k6_bin" k6
copy_in prometheus "$prometheus_bin" prometheus
copy_in nginx-exporter "$nginx_exporter_bin" nginx-prometheus-exporter
copy_in redis-exporter "$redis_exporter_bin" redis_exporter
mkdir -p "$ctx/node/usr/bin" "$ctx/node/usr/lib/node_modules"
if [[ " ${targets[*]} " == *" node "* ]]; then
  cp "$node_bin" "$ctx/node/usr/bin/node"
  cp -a "$npm_dir" "$ctx/node/usr/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/node/usr/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/node/usr/bin/npx"
fi
i=0
for image in "$@"; do
  t=${targets[$i]}; i=$((i + 1))
  say "building $image (target $t)"
  DOCKER_BUILDKIT=0 docker build -q --target "$t" --build-arg "BASE=$base" --build-arg "NGINX_BASE=$nginx_base" \
    --label "$label=$key" --label "$label.of=$image" -t "$image" "$ctx" >"$ctx/build.log" 2>&1 \
    || { tail -n 30 "$ctx/build.log" >&2; die "building the stand-in for $image failed"; }
done

say "saving $archive"
docker save -o "$archive.tmp" "$@"
mv "$archive.tmp" "$archive"
find "$CACHE_DIR" -maxdepth 1 -name 'standins-*.tar' ! -name "standins-$key.tar" -delete
have_all "$@" || die "stand-ins built but not all labelled $key: $*"
say "done (key $key)"
