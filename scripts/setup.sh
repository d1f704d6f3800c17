#!/usr/bin/env bash
# Installs what building and testing the extension needs on Debian 12, then
# builds and installs the extension into the system's PostgreSQL 15.
# Idempotent; run as root.  Used by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# One setup at a time on this machine (parallel test runs share the build).
exec 9>/tmp/queue-setup.lock
flock 9

PG_MAJOR=${PG_MAJOR:-15}
packages=(build-essential "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
          "postgresql-$PG_MAJOR-pgtap" "postgresql-contrib" libipc-run-perl)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export PATH="/usr/lib/postgresql/$PG_MAJOR/bin:$PATH"
make -s PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" >/dev/null
make -s PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" install >/dev/null
echo "setup: queue $(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" queue.control) built and installed for PostgreSQL $PG_MAJOR"
