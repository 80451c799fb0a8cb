#!/bin/sh
# Writes the compose secret `session_secrets` (docker-compose.yml): the nodes' session signing
# secrets, one per line; the first signs new cookies, every line verifies (SESSION_SECRETS_FILE).
#
#   infra/secrets/init.sh            create the file if it is missing (never overwrites)
#   infra/secrets/init.sh --rotate   put a new secret first and keep the previous ones, so cookies
#                                    signed before still verify; then recreate the nodes:
#                                    docker compose up -d --force-recreate --scale app=3 app
#
# Equivalent by hand: (umask 077; openssl rand -hex 32 > infra/secrets/session_secrets)
#
# The file is git-ignored (infra/secrets/.gitignore) and mode 0600: only its owner reads it.
# Compose bind-mounts a file secret as it is (its uid/gid/mode settings do not apply to file
# secrets), and the nodes run as the image's `node` user, uid 1000 (APP_UID). So the owner must be
# that uid: run as root, this script gives the file to uid 1000; run as another user, it warns
# unless you are uid 1000 (the first user on most Linux machines, and Docker Desktop maps the file).
set -eu
umask 077
file="$(cd "$(dirname "$0")" && pwd)/session_secrets"
app_uid=${APP_UID:-1000}

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
chmod 0600 "$file.tmp"
if [ "$(id -u)" -eq 0 ]; then
  chown "$app_uid:$app_uid" "$file.tmp"
elif [ "$(id -u)" -ne "$app_uid" ]; then
  echo "init.sh: warning: the nodes run as uid $app_uid and cannot read a 0600 file owned by uid $(id -u); run: sudo chown $app_uid $file" >&2
fi
mv "$file.tmp" "$file"
echo "init.sh: wrote $file ($(wc -l < "$file" | tr -d ' ') secret(s), mode 0600, owner uid $(ls -ln "$file" | awk '{print $3}'))"
