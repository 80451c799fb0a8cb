#!/bin/sh
# The compose nginx container's entrypoint (docker-compose.yml, service `nginx`).
# It renders the mode-specific parts of nginx.conf with render.sh (beside this file) into the
# directory that holds nginx.conf, then replaces itself with nginx in the foreground, so nginx is
# PID 1 and gets the container's stop signal.
#
# Which servers go in the `app` upstream:
#   shared  one line, the compose service name (APP_HOST:APP_PORT). Docker's DNS answers it with
#           every replica, and `resolve` re-reads that answer while nginx runs (scale up/down,
#           a killed or restarted replica).
#   sticky  one line per replica, by container name (APP_REPLICA_PREFIX<i>:APP_PORT, i = 1..
#           APP_REPLICAS), each named by that container name, which is the replica's NODE_ID
#           (its X-Served-By): the route cookie names the replica that answered (render.sh). APP_REPLICAS must equal the
#           `--scale app=N` given to compose; a name with no container behind it just stays
#           unresolved (nginx still starts and serves from the others).
#
# Environment (defaults are the compose values):
#   SESSION_MODE         shared | sticky | database | cookie | jwt   (shared)
#   APP_REPLICAS         sticky: number of replicas            (3)
#   APP_HOST             shared: the app service's name        (app)
#   APP_REPLICA_PREFIX   sticky: container name before <i>    (${COMPOSE_PROJECT_NAME:-session-cluster}-app-)
#   APP_PORT             the nodes' port                       (3000)
#   LISTEN               public listen                         (8080)
#   STATUS_LISTEN        stub_status listen (exporter only)    (8081)
#   RESOLVER             Docker's embedded DNS                 (127.0.0.11; empty = no resolver line)
#   SERVER_PARAMS        extra server parameters               (resolve; empty = none)
#   NGINX_CONF_DIR       where nginx.conf is, and where the parts are written   (/etc/nginx)
#   RENDER_ONLY          1 = render and exit 0 without starting nginx (infra/test/process/compose.test.ts)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
mode=${SESSION_MODE:-shared}
replicas=${APP_REPLICAS:-3}
app_host=${APP_HOST:-app}
replica_prefix=${APP_REPLICA_PREFIX:-${COMPOSE_PROJECT_NAME:-session-cluster}-app-}
app_port=${APP_PORT:-3000}
out=${NGINX_CONF_DIR:-/etc/nginx}
# `-` not `:-`: an explicitly empty value means "none" (the test's nginx -t on an older nginx).
RESOLVER=${RESOLVER-127.0.0.11}
SERVER_PARAMS=${SERVER_PARAMS-resolve}
export RESOLVER SERVER_PARAMS

case "$mode" in
  shared | database | cookie | jwt)
    set -- "$app_host:$app_port"
    ;;
  sticky)
    case "$replicas" in
      '' | *[!0-9]* | 0*)
        echo "docker-entrypoint.sh: APP_REPLICAS must be a whole number >= 1 (the --scale given to compose), got '$replicas'" >&2
        exit 2
        ;;
    esac
    set --
    i=1
    while [ "$i" -le "$replicas" ]; do
      set -- "$@" "$replica_prefix$i=$replica_prefix$i:$app_port"
      i=$((i + 1))
    done
    ;;
  *)
    echo "docker-entrypoint.sh: SESSION_MODE must be shared, sticky, database, cookie or jwt, got '$mode'" >&2
    exit 2
    ;;
esac

sh "$here/render.sh" "$out" "$mode" "${LISTEN:-8080}" "${STATUS_LISTEN:-8081}" "$@"
echo "docker-entrypoint.sh: mode=$mode upstream: $*${SERVER_PARAMS:+ ($SERVER_PARAMS)}" >&2

if [ "${RENDER_ONLY:-0}" = 1 ]; then
  exit 0
fi
exec nginx -p "$out/" -c "$out/nginx.conf" -g 'daemon off;'
