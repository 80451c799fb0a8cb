#!/bin/sh
# The compose Prometheus container's entrypoint (docker-compose.yml, service `prometheus`).
#
# Why not DNS discovery of `app`: Docker's DNS drops a stopped container at once, so a killed
# replica vanished from the targets instead of showing as down, and the dashboards' "Nodes up"
# said 4 of 4 with one of five dead. Instead, this script finds the replicas by their container
# names (APP_REPLICA_PREFIX<n>, n = 1, 2, ...: what compose names a scaled service's containers)
# and keeps every replica it has seen as a target until Prometheus restarts. A killed replica's
# name no longer resolves, its scrape fails, and it shows as `up == 0` with its `node` label. The
# targets go to a file_sd file that prometheus.yml reads (Prometheus re-reads it on change).
#
# Every SD_INTERVAL seconds it asks each name it does not know yet, from 1 to two past the
# highest it knows, for /healthz on the metrics port; the first to answer becomes a target. So a
# scale-up shows within seconds. A deliberate scale-down also leaves the removed replicas as down
# targets, until `docker compose restart prometheus` (a scale-down and a crash look the same
# from inside the network; only the Docker API could tell them apart, and Prometheus is given
# no access to it).
#
# Runs in the official image (busybox sh and wget) and in the stand-in (Debian's dash and wget).
# Environment: APP_REPLICA_PREFIX (session-cluster-app-), APP_METRICS_PORT (9100),
# SD_DIR (/prometheus/file_sd, in the data volume: writable by the image's user), SD_INTERVAL (5).
# The store's servers are fixed by the compose files, not discovered: REDIS_TARGETS and
# SENTINEL_TARGETS (space-separated host:port; default redis:6379 and none) become the `redis`
# and `sentinel` jobs' targets, each scraped through REDIS_EXPORTER (redis-exporter:9121), named
# by its host (prometheus.yml says how).
# Arguments: Prometheus' own, passed on by exec.
set -eu
prefix=${APP_REPLICA_PREFIX:-session-cluster-app-}
port=${APP_METRICS_PORT:-9100}
dir=${SD_DIR:-/prometheus/file_sd}
interval=${SD_INTERVAL:-5}
mkdir -p "$dir"

write_targets() {
  {
    printf '['
    sep=''
    for i in $1; do
      printf '%s\n  {"targets": ["%s%s:%s"], "labels": {"node": "%s%s"}}' "$sep" "$prefix" "$i" "$port" "$prefix" "$i"
      sep=','
    done
    printf '\n]\n'
  } > "$dir/app.json.tmp"
  mv "$dir/app.json.tmp" "$dir/app.json"
}

discover() {
  known=''
  while :; do
    max=0
    for i in $known; do [ "$i" -gt "$max" ] && max=$i; done
    found=''
    i=1
    while [ "$i" -le $((max + 2)) ]; do
      case " $known " in
        *" $i "*) ;;
        *)
          if wget -q -T 2 -O /dev/null "http://$prefix$i:$port/healthz" 2>/dev/null; then
            found="$found $i"
            [ "$i" -gt "$max" ] && max=$i
          fi
          ;;
      esac
      i=$((i + 1))
    done
    if [ -n "$found" ]; then
      known=$(printf '%s\n' $known $found | sort -n | tr '\n' ' ')
      write_targets "$known"
      echo "docker-entrypoint.sh: app targets: $(printf "$prefix%s " $known)" >&2
    fi
    sleep "$interval"
  done
}

# The `redis` / `sentinel` jobs' file: one target per host:port, labelled with its host and the exporter.
write_store_targets() { # file targets
  {
    printf '['
    sep=''
    for t in $2; do
      printf '%s\n  {"targets": ["%s"], "labels": {"redis": "%s", "exporter": "%s"}}' "$sep" "$t" "${t%:*}" "${REDIS_EXPORTER:-redis-exporter:9121}"
      sep=','
    done
    printf '\n]\n'
  } > "$dir/$1.tmp"
  mv "$dir/$1.tmp" "$dir/$1"
}
write_store_targets redis.json "${REDIS_TARGETS-redis:6379}"
write_store_targets sentinel.json "${SENTINEL_TARGETS-}"

# An empty target list first, so the job exists from the start.
[ -e "$dir/app.json" ] || write_targets ''
discover &
exec prometheus "$@"
