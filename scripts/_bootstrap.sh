# Shared install steps for scripts/start and scripts/test (sourced, not run).

_sudo() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

_apt_install() {
  if command -v apt-get >/dev/null 2>&1; then
    _sudo apt-get update -qq && _sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "please install: $*" >&2; return 1
  fi
}

bootstrap_python() {
  local extra="${1:-}"
  local py="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    if ! "$py" -m venv .venv >/dev/null 2>&1; then
      rm -rf .venv
      _apt_install python3-venv
      "$py" -m venv .venv
    fi
  fi
  local stamp=".venv/.ownbase-installed-${extra:-base}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    # Build tools' warnings (setuptools deprecations) are noise to a user: kept in a log that is
    # shown only when the install fails.
    local log=".venv/install.log"
    local target="."
    [ -n "$extra" ] && target=".[$extra]"
    if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q -e "$target"; } >"$log" 2>&1; then
      cat "$log" >&2
      return 1
    fi
    touch "$stamp"
  fi
}

bootstrap_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    _apt_install redis-server
  fi
}

# PostgreSQL 15+ with contrib (pgcrypto, uuid-ossp): the migration tests build a Supabase-shaped
# source on a private cluster of these binaries (the embedded wheel lacks contrib).
bootstrap_postgresql() {
  if ! ls /usr/share/postgresql/*/extension/uuid-ossp.control >/dev/null 2>&1; then
    _apt_install postgresql
  fi
}

# PostGIS for the Debian PostgreSQL that bootstrap_postgresql installed (bookworm: 15): the GeoJSON
# tests run a private cluster of those binaries, since the embedded wheel has no PostGIS.
bootstrap_postgis() {
  local major
  major="$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | awk -F/ '{print $5}' | sort -n | tail -1)"
  if [ -z "$major" ]; then
    echo "no Debian PostgreSQL under /usr/lib/postgresql: cannot add PostGIS to it" >&2; return 1
  fi
  if [ ! -f "/usr/share/postgresql/$major/extension/postgis.control" ]; then
    _apt_install "postgresql-$major-postgis-3"
  fi
}

bootstrap_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    _apt_install nodejs npm
  fi
  if [ ! -d tests/js/node_modules ] || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

# Debian's chromium for the dashboard's browser tests: Playwright drives /usr/bin/chromium through
# its executable path (no browser build is ever downloaded).
bootstrap_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    _apt_install chromium
  fi
}
