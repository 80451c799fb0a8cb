#!/usr/bin/env bash
# Three Docker hosts on this machine, for the swarm (services/cluster/src/swarm): each host is a
# network namespace on one bridge, with its own hostname (a UTS namespace), its own dockerd (data
# root, exec root, socket under RUN_DIR/hN) and its own cgroup, so that one command can power it off.
#
#   hosts.sh up [N]        create N hosts (default 3) and start their engines; idempotent
#   hosts.sh start hN      start hN's engine again (after a kill); its containers come back with it
#   hosts.sh kill hN       power loss: freeze every process of hN (engine, containerd, shims and every
#                          container's processes: one cgroup), SIGKILL them all, thaw
#   hosts.sh cut hN [all|hosts]   partition: hN loses the other hosts (hosts) or everything (all),
#                          clients included; `heal hN` undoes it
#   hosts.sh heal hN
#   hosts.sh down          stop everything, remove every namespace, link, rule, mount and cgroup made
#   hosts.sh addr hN       the host's address (clients reach published ports there)
#   hosts.sh sock hN       the host's Docker socket (DOCKER_HOST=unix://...)
#
# Addresses: the bridge is SWARM_BRIDGE (scswarm0) with 10.214.0.1/24; host i is 10.214.0.(10+i).
# Only the namespaces and the bridge made here are touched; processes are found by pidfile and cgroup.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
run=${SWARM_RUN_DIR:-$repo/.run/swarm}
bridge=${SWARM_BRIDGE:-scswarm0}
net=${SWARM_NET:-10.214.0}
cg=${SWARM_CGROUP:-session-cluster-swarm}
controllers="pids freezer"
say() { printf '[swarm-hosts] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

host_index() { case "$1" in h[1-9]) echo "${1#h}" ;; *) die "a host is h1..h9, got '$1'" ;; esac; }
ns_of() { echo "sc-$1"; }
addr_of() { echo "$net.$((10 + $(host_index "$1")))"; }
sock_of() { echo "$run/$1/docker.sock"; }
hosts() { for d in "$run"/h[1-9]; do [ -d "$d" ] && basename "$d"; done; }
answers() { DOCKER_HOST="unix://$(sock_of "$1")" timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# Every pid in the host's cgroup (its engine and its containers), from the pids hierarchy.
host_pids() { find "/sys/fs/cgroup/pids/$cg/$1" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un; }

make_host() {
  local h=$1 ns veth
  ns=$(ns_of "$h") veth="sc$h"
  mkdir -p "$run/$h/data" "$run/$h/exec"
  ip netns list | grep -qx "$ns\( .*\)\?" || ip netns add "$ns"
  if ! ip link show "$veth" >/dev/null 2>&1; then
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$bridge" up
  fi
  ip -n "$ns" link set lo up
  ip -n "$ns" addr replace "$(addr_of "$h")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route replace default via "$net.1"
  for c in $controllers; do mkdir -p "/sys/fs/cgroup/$c/$cg/$h/engine"; done
}

start_engine() {
  local h=$1 ns d
  ns=$(ns_of "$h") d="$run/$h"
  answers "$h" && return 0
  rm -f "$d/docker.sock" "$d/dockerd.pid"
  # The engine joins the host's cgroup before it starts, so everything it starts (containerd, the
  # shims) is in it too; the containers go to the same cgroup (--cgroup-parent).
  # shellcheck disable=SC2016
  setsid nsenter --net="/var/run/netns/$ns" unshare --uts sh -c '
    for c in '"$controllers"'; do echo $$ > "/sys/fs/cgroup/$c/'"$cg/$h"'/engine/cgroup.procs"; done
    hostname '"$h"'
    # No registry is reachable: without this, every task start first tries to pull its image
    # (moby: daemon/cluster/executor/container), and waits out a DNS timeout per endpoint.
    export DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1
    exec dockerd --data-root "$1/data" --exec-root "$1/exec" --pidfile "$1/dockerd.pid" -H "unix://$1/docker.sock" \
      --cgroup-parent "/'"$cg/$h"'" --storage-driver overlay2 --log-driver json-file --log-opt max-size=10m \
      --default-address-pool base=10.215.0.0/16,size=24 --dns '"$net.1"'' sh "$d" >"$d/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    answers "$h" && return 0
    sleep 0.5
  done
  tail -n 20 "$d/dockerd.log" >&2
  die "$h: dockerd did not answer within 60 s (log: $d/dockerd.log)"
}

kill_host() {
  local h=$1 c
  # Frozen first, so that nothing reacts (a shim reaping, a restart) between the first and last kill.
  for f in $(find "/sys/fs/cgroup/freezer/$cg/$h" -name freezer.state); do echo FROZEN > "$f"; done
  for p in $(host_pids "$h"); do kill -KILL "$p" 2>/dev/null || true; done
  for f in $(find "/sys/fs/cgroup/freezer/$cg/$h" -name freezer.state); do echo THAWED > "$f"; done
  for _ in $(seq 1 100); do [ -z "$(host_pids "$h")" ] && break; sleep 0.1; done
  [ -z "$(host_pids "$h")" ] || die "$h: processes survived the kill: $(host_pids "$h" | tr '\n' ' ')"
  # What a dead kernel would not keep: the engine's mounts (a restart remounts them).
  umount_under "$run/$h"
  for c in $controllers; do find "/sys/fs/cgroup/$c/$cg/$h" -mindepth 1 -depth -type d ! -name engine -exec rmdir {} + 2>/dev/null || true; done
}

umount_under() { # every mount below a directory, deepest first
  awk -v d="$1/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

cut() {
  local h=$1 what=${2:-all} ns
  ns=$(ns_of "$h")
  heal "$h"
  if [ "$what" = all ]; then
    ip -n "$ns" link set eth0 down
  else
    # Only the other hosts: clients (the bridge's own address) still reach this one.
    for o in $(hosts); do
      [ "$o" = "$h" ] && continue
      ip netns exec "$ns" iptables -I INPUT -s "$(addr_of "$o")" -j DROP -m comment --comment sc-cut
      ip netns exec "$ns" iptables -I OUTPUT -d "$(addr_of "$o")" -j DROP -m comment --comment sc-cut
    done
  fi
}

heal() {
  local h=$1 ns
  ns=$(ns_of "$h")
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route replace default via "$net.1"
  for chain in INPUT OUTPUT; do
    while ip netns exec "$ns" iptables -S "$chain" | grep -q 'sc-cut'; do
      ip netns exec "$ns" iptables -S "$chain" | grep 'sc-cut' | head -n1 | sed 's/^-A/-D/' | xargs ip netns exec "$ns" iptables
    done
  done
}

up() {
  local n=${1:-3}
  [ "$(id -u)" -eq 0 ] || die "the hosts need root (namespaces, bridges, iptables, mounts)"
  command -v dockerd >/dev/null || die "dockerd not found: apt-get install docker.io (scripts/setup.sh does)"
  [ -d /sys/fs/cgroup/freezer ] || die "no cgroup v1 freezer hierarchy at /sys/fs/cgroup/freezer"
  mkdir -p "$run"
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$net.1/24" dev "$bridge"
  fi
  ip link set "$bridge" up
  # Once any Docker engine has run here, FORWARD's policy is DROP and bridged frames pass through it.
  iptables -C FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null || iptables -I FORWARD -i "$bridge" -o "$bridge" -j ACCEPT
  # The hosts' DNS server (no-dns.mjs): NXDOMAIN for every name Docker's DNS does not know itself.
  if ! { [ -s "$run/dns.pid" ] && kill -0 "$(cat "$run/dns.pid")" 2>/dev/null; }; then
    setsid node "$here/no-dns.mjs" "$net.1" 53 >"$run/dns.log" 2>&1 </dev/null &
    echo $! > "$run/dns.pid"
  fi
  for i in $(seq 1 "$n"); do make_host "h$i"; done
  local pids=()
  for i in $(seq 1 "$n"); do
    start_engine "h$i" &
    pids+=($!)
  done
  wait "${pids[@]}"
  for i in $(seq 1 "$n"); do answers "h$i" || die "h$i: its engine does not answer"; done
}

down() {
  local h p
  for h in $(hosts); do
    p=$(cat "$run/$h/dockerd.pid" 2>/dev/null || true)
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  for h in $(hosts); do
    p=$(cat "$run/$h/dockerd.pid" 2>/dev/null || true)
    for _ in $(seq 1 100); do { [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; } && break; sleep 0.1; done
  done
  for h in $(hosts); do
    [ -d "/sys/fs/cgroup/pids/$cg/$h" ] && kill_host "$h" >/dev/null 2>&1 || true
    umount_under "$run/$h"
    ip netns del "$(ns_of "$h")" 2>/dev/null || true
    ip link del "sc$h" 2>/dev/null || true
    for c in $controllers; do find "/sys/fs/cgroup/$c/$cg/$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
  done
  for c in $controllers; do rmdir "/sys/fs/cgroup/$c/$cg" 2>/dev/null || true; done
  iptables -D FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null || true
  p=$(cat "$run/dns.pid" 2>/dev/null || true)
  [ -n "$p" ] && grep -q no-dns "/proc/$p/cmdline" 2>/dev/null && kill -TERM "$p" 2>/dev/null || true
  rm -f "$run/dns.pid"
  ip link del "$bridge" 2>/dev/null || true
  # The data roots go too (images included): the next `up` loads them again.
  rm -rf "${run:?}"/h[1-9]
}

cmd=${1:-}
shift || true
case "$cmd" in
  up) up "${1:-3}" ;;
  start) start_engine "$1" ;;
  kill) kill_host "$1" ;;
  cut) cut "$1" "${2:-all}" ;;
  heal) heal "$1" ;;
  down) down ;;
  addr) addr_of "$1" ;;
  sock) sock_of "$1" ;;
  pids) host_pids "$1" ;;
  *) die "usage: hosts.sh up [N] | start hN | kill hN | cut hN [all|hosts] | heal hN | down | addr hN | sock hN | pids hN" ;;
esac
