#!/usr/bin/env bash
# Creates, starts and stops a local PostgreSQL 15 cluster with pg_cron preloaded.
#
#   scripts/cluster.sh start|stop|crash|restart|status|dsn|remove NAME
#
# NAME separates clusters (demo, test, bench) so they run side by side. Settings, from the
# environment:
#   GSTJOBS_PORT          TCP port on 127.0.0.1 (demo 54320, test 54321, bench 54322)
#   GSTJOBS_CRON_DB       database pg_cron works in, cron.database_name (default gstjobs)
#   GSTJOBS_CLUSTER_ROOT  where clusters live (root: /var/lib/postgresql/gstjobs,
#                         others: ~/.local/state/gstjobs)
#   GSTJOBS_SERVER_ENV    the server's whole environment, as a service manager gives it
#                         (e.g. "PATH=/usr/bin"); unset, the server inherits this script's
set -euo pipefail

action=${1:?usage: cluster.sh start|stop|restart|status|dsn NAME}
name=${2:-demo}
case "$name" in
  demo) default_port=54320 ;; test) default_port=54321 ;; bench) default_port=54322 ;;
  *) default_port=54329 ;;
esac
port=${GSTJOBS_PORT:-$default_port}
cron_db=${GSTJOBS_CRON_DB:-gstjobs}
# Debian's PostgreSQL 15 (GSTJOBS_PG_DIR points elsewhere, e.g. to check the messages below)
pgdir=${GSTJOBS_PG_DIR:-/usr/lib/postgresql/15}
bindir=$pgdir/bin

# PostgreSQL refuses to run as root: root runs it as Debian's 'postgres' user, in a directory
# that user owns (a checkout under /root is not reachable by it).
if [ "$(id -u)" -eq 0 ]; then
  os_user=postgres
  root=${GSTJOBS_CLUSTER_ROOT:-/var/lib/postgresql/gstjobs}
  as_server() { runuser -u postgres -- "$@"; }
else
  os_user=$(id -un)
  root=${GSTJOBS_CLUSTER_ROOT:-${XDG_STATE_HOME:-$HOME/.local/state}/gstjobs}
  as_server() { "$@"; }
fi
dir=$root/$name
data=$dir/data
log=$dir/server.log

die() { echo "cluster.sh: $*" >&2; exit 1; }

check_packages() {
  [ -x $bindir/postgres ] || die "PostgreSQL 15 is not installed: run scripts/install-deps.sh (package postgresql-15)"
  [ -f "$pgdir/lib/pg_cron.so" ] || die "pg_cron is not installed: run scripts/install-deps.sh (package postgresql-15-cron)"
  [ -f "$pgdir/lib/plpython3.so" ] || die "PL/Python is not installed: run scripts/install-deps.sh (package postgresql-plpython3-15)"
  id "$os_user" >/dev/null 2>&1 || die "user '$os_user' is missing: it comes with the postgresql-15 package"
}

running() { [ -f "$data/postmaster.pid" ] && as_server $bindir/pg_ctl -D "$data" status >/dev/null 2>&1; }

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

init_cluster() {
  mkdir -p "$dir"
  chown "$os_user" "$dir"
  as_server $bindir/initdb -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || die "initdb failed, see $dir/initdb.log"
  # Local development and test cluster: loopback only, trusted. Never expose it.
  cat >"$data/pg_hba.conf" <<HBA
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
HBA
  echo "include_if_exists = 'gstjobs.conf'" >>"$data/postgresql.conf"
}

write_settings() {
  as_server tee "$data/gstjobs.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
shared_preload_libraries = 'pg_cron'
cron.database_name = '$cron_db'
cron.use_background_workers = on
max_worker_processes = 32
max_connections = 200
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
fsync = ${GSTJOBS_FSYNC:-on}
CONF
}

start() {
  check_packages
  if running; then
    current=$(sed -n "s/^port = //p" "$data/gstjobs.conf")
    [ "$current" = "$port" ] || die "cluster '$name' already runs on port $current, not $port: stop it first"
    echo "cluster '$name' is already running on 127.0.0.1:$port (log: $log)"
    return
  fi
  port_taken && die "port $port on 127.0.0.1 is taken by another program: set GSTJOBS_PORT to a free port"
  [ -f "$data/PG_VERSION" ] || init_cluster
  write_settings
  touch "$log" && chown "$os_user" "$log"
  # A port in the ephemeral range can be held for a minute by a client connection's
  # TIME_WAIT (its local port, e.g. a test's connection to another cluster): nothing listens,
  # yet the bind fails. Wait that out; any other failure stops at once.
  for attempt in $(seq 40); do
    as_server ${GSTJOBS_SERVER_ENV:+env -i $GSTJOBS_SERVER_ENV} $bindir/pg_ctl -D "$data" -l "$log" -w -t 60 start >/dev/null && break
    if [ "$attempt" -lt 40 ] && tail -n 5 "$log" | grep -q 'could not bind .*Address already in use' && ! port_taken; then
      sleep 2
      continue
    fi
    tail -n 20 "$log" >&2
    die "the server did not start, see $log"
  done
  echo "cluster '$name' running on 127.0.0.1:$port, pg_cron in database '$cron_db' (log: $log)"
}

stop() {
  if running; then
    # mode: fast (a clean stop), or immediate (as a crash would: for reliability tests)
    as_server $bindir/pg_ctl -D "$data" -m "${1:-fast}" -w -t 60 stop >/dev/null
    echo "cluster '$name' stopped"
  else
    echo "cluster '$name' is not running"
  fi
}

case "$action" in
  start) start ;;
  stop) stop ;;
  crash) stop immediate ;;
  restart) stop; start ;;
  status) if running; then echo "cluster '$name' running on 127.0.0.1:$port (data: $data, log: $log)"; else echo "cluster '$name' not running"; exit 3; fi ;;
  dsn) echo "postgresql://postgres@127.0.0.1:$port/$cron_db" ;;
  remove) running && die "cluster '$name' is running: stop it first"; rm -rf "$dir"; echo "cluster '$name' removed" ;;
  *) die "unknown action '$action': use start, stop, crash, restart, status, dsn or remove" ;;
esac
