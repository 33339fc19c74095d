#!/usr/bin/env bash
# Installs the Debian packages gstjobs needs, only those that are missing.
set -euo pipefail

# python3.11-minimal: the server's interpreter, which dispatch's sender runs on (PL/Python's
# package brings only the library)
packages=(postgresql-15 postgresql-15-cron postgresql-plpython3-15 python3.11-minimal postgresql-client-15 openssl)
# the tests': the metrics exporter DBAs run and promtool (monitoring/), a browser for the
# dashboard's tests
packages+=(prometheus-postgres-exporter prometheus chromium chromium-driver)
# Debian's own python3 ships venv separately; a pyenv or python.org build has it built in.
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
# The Debian package would create and start a 'main' cluster on 5432; gstjobs runs its own.
"${sudo[@]}" mkdir -p /etc/postgresql-common
[ -f /etc/postgresql-common/createcluster.conf ] || echo 'create_main_cluster = false' \
  | "${sudo[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
# Debian starts a package's service as it installs it (prometheus on :9090, the exporter on
# :9187): nothing of that is wanted here, the tests start what they need on loopback. A
# policy-rc.d that refuses every start, for the length of the install, unless one is there.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod +x "$policy"
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}"
