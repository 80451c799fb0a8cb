#!/usr/bin/env bash
# A private Docker engine for the live compose test (infra/test/heavy/compose-live.test.ts), so the test never
# touches the user's engine or /var/run/docker.sock. Everything it owns is under RUN_DIR
# (default .run/docker in the repository, git-ignored):
#   data/  data root (images, containers, volumes)   exec/  exec root (containerd, netns)
#   docker.sock   the API socket                      dockerd.pid, dockerd.log
#
#   infra/docker/engine.sh start [RUN_DIR]   start dockerd (as root) and wait until it answers;
#                                            prints DOCKER_HOST=unix://... on stdout
#   infra/docker/engine.sh stop  [RUN_DIR]   SIGTERM the dockerd it started (by its pidfile), wait
#   infra/docker/engine.sh status [RUN_DIR]  exit 0 if that engine answers
#
# Needs Debian's docker.io (dockerd 20.10; scripts/setup.sh installs it) and root: dockerd creates
# bridges, iptables rules and mounts. Its default bridge is its own, DOCKER_BRIDGE (scdocker0, with
# DOCKER_BRIDGE_CIDR 10.212.0.1/24), not docker0; compose networks come from DOCKER_ADDRESS_POOL
# (10.213.0.0/16 in /24s). It refuses to start beside another dockerd: two engines on one machine
# rewrite each other's iptables chains. Use that engine instead (COMPOSE_TEST_DOCKER_HOST).
set -euo pipefail
cmd=${1:-}
repo=$(cd "$(dirname "$0")/../.." && pwd)
run=${2:-${DOCKER_RUN_DIR:-$repo/.run/docker}}
sock=$run/docker.sock
pidfile=$run/dockerd.pid
export DOCKER_HOST=unix://$sock

# The dockerds in this network namespace. Engines in others (the swarm's hosts, infra/swarm/hosts.sh)
# have iptables of their own and do not conflict.
engines_here() {
  local here p
  here=$(readlink /proc/self/ns/net)
  for p in $(pgrep -x dockerd); do [ "$(readlink "/proc/$p/ns/net" 2>/dev/null)" = "$here" ] && echo "$p"; done
  return 0
}
answers() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

case "$cmd" in
  start)
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && answers; then
      echo "DOCKER_HOST=$DOCKER_HOST"; exit 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
      echo "engine.sh: a private dockerd must run as root (it creates bridges, iptables rules and mounts); run as root or point DOCKER_HOST at an engine you have" >&2
      exit 1
    fi
    command -v dockerd >/dev/null || { echo "engine.sh: dockerd not found: apt-get install docker.io (scripts/setup.sh does)" >&2; exit 1; }
    if other=$(engines_here) && [ -n "$other" ]; then
      echo "engine.sh: another dockerd is running (pid $(echo $other | tr '\n' ' ')); two engines on one machine rewrite each other's iptables chains. Use it instead: COMPOSE_TEST_DOCKER_HOST=unix:///var/run/docker.sock (or stop it)" >&2
      exit 1
    fi
    bridge=${DOCKER_BRIDGE:-scdocker0}
    cidr=${DOCKER_BRIDGE_CIDR:-10.212.0.1/24}
    if ! ip link show "$bridge" >/dev/null 2>&1; then
      ip link add "$bridge" type bridge
      ip addr add "$cidr" dev "$bridge"
    fi
    ip link set "$bridge" up
    mkdir -p "$run/data" "$run/exec"
    rm -f "$sock" "$pidfile"
    # setsid: the engine outlives this script but not the test, which stops it in its teardown.
    setsid dockerd \
      --data-root "$run/data" --exec-root "$run/exec" --pidfile "$pidfile" -H "unix://$sock" \
      --bridge "$bridge" \
      --default-address-pool "base=${DOCKER_ADDRESS_POOL:-10.213.0.0/16},size=24" \
      --storage-driver overlay2 --log-driver json-file --log-opt max-size=10m \
      >"$run/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 120); do
      answers && { echo "DOCKER_HOST=$DOCKER_HOST"; exit 0; }
      [ -s "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null && break
      sleep 0.5
    done
    echo "engine.sh: dockerd did not answer on $sock within 60 s; its log ($run/dockerd.log) ends with:" >&2
    tail -n 20 "$run/dockerd.log" >&2 || true
    exit 1
    ;;
  stop)
    [ -s "$pidfile" ] || exit 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" || true
    fi
    rm -f "$pidfile"
    # The bridge it had (docker0 stays the user's). Only if no other engine of ours still uses it.
    [ -n "$(engines_here)" ] || ip link del "${DOCKER_BRIDGE:-scdocker0}" 2>/dev/null || true
    ;;
  status)
    answers
    ;;
  *)
    echo "usage: infra/docker/engine.sh start|stop|status [RUN_DIR]" >&2
    exit 2
    ;;
esac
