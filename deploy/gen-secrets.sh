#!/bin/sh
# Makes the secrets deploy/docker-compose.yml reads, under deploy/secrets/
# (git-ignored). Run once before the first `docker compose up`:
#
#   deploy/gen-secrets.sh [NAME…]
#
# NAMEs: the DNS names (or IP addresses) agents and browsers reach the
# hubs at, put in the TLS certificate next to hub-a, hub-b, hub-c and
# localhost. It refuses to overwrite existing secrets (delete the folder
# to start over; the database password then no longer matches a
# PostgreSQL volume made with the old one).
#
#   secrets/pg_password  PostgreSQL password of the sysmonstm role
#   secrets/pgpass       the same, as a pgpass line for the hubs (PGPASSFILE)
#   secrets/hub.env      SYSMONSTM_ADMIN_PASSWORD, the first admin's password
#   secrets/ca.crt       CA that signed hub.crt: give it to agents (--tls-ca)
#   secrets/hub.crt, hub.key   the hubs' certificate (gRPC and HTTPS)
#   secrets/lb.pem       the same certificate and key for the load balancer
set -eu
dir=$(cd "$(dirname "$0")" && pwd)/secrets
if [ -e "$dir" ]; then
	echo "gen-secrets: $dir exists; remove it to make new secrets" >&2
	exit 1
fi
umask 077
mkdir -p "$dir"
rand() { openssl rand -hex 24; }

pg=$(rand)
printf '%s\n' "$pg" >"$dir/pg_password"
printf '*:*:*:sysmonstm:%s\n' "$pg" >"$dir/pgpass"
admin=$(rand)
printf 'SYSMONSTM_ADMIN_PASSWORD=%s\n' "$admin" >"$dir/hub.env"

san="DNS:hub-a,DNS:hub-b,DNS:hub-c,DNS:localhost,IP:127.0.0.1"
for n in "$@"; do
	case $n in
	*[!0-9.:a-fA-F]*) san="$san,DNS:$n" ;;
	*) san="$san,IP:$n" ;;
	esac
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
	-subj "/CN=sysmonstm deployment CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-subj "/CN=sysmonstm hub" -keyout "$dir/hub.key" -out "$dir/hub.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >"$dir/hub.ext"
openssl x509 -req -in "$dir/hub.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
	-days 825 -extfile "$dir/hub.ext" -out "$dir/hub.crt" 2>/dev/null
cat "$dir/hub.crt" "$dir/hub.key" >"$dir/lb.pem"
rm -f "$dir/hub.csr" "$dir/hub.ext" "$dir/ca.srl"

# The containers run as other users (hub: 65532, postgres: 999, haproxy: 99)
# and compose mounts these files with their mode here, so they must be
# readable to them; the folder itself stays private to you.
chmod 0700 "$dir"
chmod 0644 "$dir"/*
chmod 0600 "$dir/ca.key" "$dir/hub.env"   # read by compose itself, not mounted
echo "gen-secrets: wrote $dir (admin password: in hub.env; agents need ca.crt)"
