#!/bin/sh
# Writes the compose secret `session_secrets` (docker-compose.yml): the nodes' session signing
# secrets, one per line; the first signs new cookies, every line verifies (SESSION_SECRETS_FILE).
#
#   infra/secrets/init.sh            create the file if it is missing (never overwrites)
#   infra/secrets/init.sh --rotate   put a new secret first and keep the previous ones, so cookies
#                                    signed before still verify; then recreate the nodes:
#                                    docker compose up -d --force-recreate --scale app=3 app
#
# Equivalent by hand: openssl rand -hex 32 > infra/secrets/session_secrets
# The file is git-ignored (infra/secrets/.gitignore). It is mode 0644 on purpose: compose mounts a
# file secret as-is, and the nodes run as the image's `node` user, which must be able to read it.
set -eu
file="$(cd "$(dirname "$0")" && pwd)/session_secrets"

new_secret() {
  # 32 random bytes as 64 hex characters (the node wants at least 32 characters).
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -hex 32
  else
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
    echo
  fi
}

case "${1:-}" in
  '')
    if [ -s "$file" ]; then
      echo "init.sh: $file exists; left as it is (--rotate to add a new signing secret)"
      exit 0
    fi
    new_secret > "$file.tmp"
    ;;
  --rotate)
    [ -s "$file" ] || { echo "init.sh: $file does not exist yet; run init.sh without --rotate" >&2; exit 1; }
    { new_secret; head -n 4 "$file"; } > "$file.tmp"   # the new one first, up to 4 old ones after it
    ;;
  *)
    echo "usage: infra/secrets/init.sh [--rotate]" >&2
    exit 2
    ;;
esac
chmod 0644 "$file.tmp"
mv "$file.tmp" "$file"
echo "init.sh: wrote $file ($(wc -l < "$file" | tr -d ' ') secret(s))"
