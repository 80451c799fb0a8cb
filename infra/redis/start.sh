#!/bin/sh
# The entrypoint of each Redis of the Sentinel topology (docker-compose.sentinel.yml and the swarm
# stack): it starts the server as what the Sentinels say it is now, not as what it was at the
# first start. Arguments: the redis-server command line (the service's `command`), passed on to
# the image's own docker-entrypoint.sh.
#
# Why: a container that comes back as a new one (a swarm task replaced after its host was lost
# or partitioned, a crashed container recreated) has a new address, which the Sentinels do not
# know. Started from its command alone, `redis` would be a second, empty-handed primary, and a
# replica would follow `redis` even when that is itself a replica now (a chain: the primary does
# not list it, so the Sentinels never learn it, and it can never be promoted). Measured on the
# swarm: a replaced replica-2 followed `redis`, a replica, and the Sentinels counted 1 replica.
#
# How: every Sentinel (SENTINELS: host:port, each host resolved to every address it has; Docker's
# DNS answers `sentinel` with each of them) is asked for the primary of MASTER_NAME, and the
# answer of the one with the newest configuration epoch is used:
#   it names this container        start as the primary (--replicaof no one)
#   it names another server, up    start as its replica (--replicaof <address>)
#   it names a server that is down wait (up to WAIT_S) for the Sentinels' failover, then as above
#                                  (down: no PONG, or flagged down or failing over by the Sentinel)
#   no Sentinel answers            the command as written (the first start: no Sentinel yet)
set -eu
SENTINELS=${SENTINELS:-sentinel:26379}
MASTER_NAME=${MASTER_NAME:-sessions}
WAIT_S=${WAIT_S:-30}

say() { echo "start.sh: $*" >&2; }

# "<epoch> <address> <port> <flags>" of the newest answer, or nothing.
primary() {
  for sentinel in $SENTINELS; do
    for s in $(timeout 3 getent ahostsv4 "${sentinel%:*}" 2>/dev/null | awk '{ print $1 }' | sort -u); do
      timeout 2 redis-cli -h "$s" -p "${sentinel##*:}" --raw sentinel master "$MASTER_NAME" 2>/dev/null |
        awk 'NR % 2 { k = $0; next } k == "ip" { ip = $0 } k == "port" { port = $0 } k == "config-epoch" { e = $0 } k == "flags" { f = $0 }
             END { if (ip != "" && port != "") print e + 0, ip, port, f }' || true
    done
  done | sort -n -r | head -n 1
}

# This server's addresses (ip:port; loopback for a server started outside a container), and the
# address of a name (the Sentinels answer `redis` until the first failover).
port=6379
previous=""
for a in "$@"; do
  [ "$previous" = --port ] && port=$a
  previous=$a
done
mine=" "
for ip in 127.0.0.1 $(hostname -i 2>/dev/null || true); do mine="$mine$ip:$port "; done
# Whether the server named is up: it answers PING, and no Sentinel flagged it down or failing over.
up() { [ -n "$1" ] && [ "$(timeout 2 redis-cli -h "$1" -p "$2" ping 2>/dev/null)" = PONG ] && case "$3" in *_down* | *failover*) false ;; esac; }
address() { case "$1" in *[!0-9.]*) timeout 3 getent ahostsv4 "$1" 2>/dev/null | awk 'NR == 1 { print $1 }' ;; *) echo "$1" ;; esac; }

deadline=$(($(date +%s) + WAIT_S))
while :; do
  answer=$(primary)
  if [ -z "$answer" ]; then
    say "no Sentinel answers for $MASTER_NAME: starting as the command says"
    exec docker-entrypoint.sh "$@"
  fi
  read -r epoch host primary_port flags <<EOF
$answer
EOF
  ip=$(address "$host")
  case "$mine" in
    *" $ip:$primary_port "*)
      say "the Sentinels name this server ($ip:$primary_port, epoch $epoch) the primary: starting as the primary"
      exec docker-entrypoint.sh "$@" --replicaof no one
      ;;
  esac
  if ! up "$ip" "$primary_port" "$flags"; then
    if [ "$(date +%s)" -lt "$deadline" ]; then
      sleep 1
      continue
    fi
    say "the primary the Sentinels name ($host:$primary_port) is still down after ${WAIT_S}s: starting as the command says"
    exec docker-entrypoint.sh "$@"
  fi
  say "the Sentinels name $host:$primary_port (epoch $epoch) the primary: starting as its replica"
  exec docker-entrypoint.sh "$@" --replicaof "${ip:-$host}" "$primary_port"
done
