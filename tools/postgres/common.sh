# shellcheck shell=bash
# Shared helpers for tools/postgres/{start,stop}. Sourced, not run.

pg_log() { printf '[postgres] %s\n' "$*" >&2; }
pg_die() {
  printf '[postgres] ERROR: %s\n' "$1" >&2
  shift
  local line
  for line in "$@"; do printf '[postgres]        %s\n' "$line" >&2; done
  exit 1
}

# Sets PG_BIN to the server binaries: $PG_BIN_DIR, else the newest
# /usr/lib/postgresql/<major>/bin with initdb+postgres+pg_ctl (Debian layout).
pg_find_bin() {
  if [[ -n "${PG_BIN_DIR:-}" ]]; then
    PG_BIN="$PG_BIN_DIR"
  else
    PG_BIN=""
    local d
    while IFS= read -r d; do
      if [[ -x "$d/initdb" && -x "$d/postgres" && -x "$d/pg_ctl" ]]; then PG_BIN="$d"; fi
    done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V)
    [[ -n "$PG_BIN" ]] || pg_die "no PostgreSQL server binaries found in /usr/lib/postgresql/*/bin." \
      "Install them: run tools/bootstrap as root, or apt-get install postgresql." \
      "(Or set PG_BIN_DIR to a directory containing initdb, postgres and pg_ctl.)"
  fi
  local b
  for b in initdb postgres pg_ctl; do
    [[ -x "$PG_BIN/$b" ]] || pg_die "$PG_BIN/$b is missing or not executable." \
      "Install the PostgreSQL server package (apt-get install postgresql) or fix PG_BIN_DIR."
  done
}

# Client tools: prefer the ones next to the server, else PATH.
pg_client() {
  if [[ -x "$PG_BIN/$1" ]]; then echo "$PG_BIN/$1"
  elif command -v "$1" >/dev/null 2>&1; then command -v "$1"
  else pg_die "$1 not found (neither in $PG_BIN nor on PATH)." "Install postgresql-client (apt-get install postgresql)."
  fi
}

# Runs a command as OS user $1 (no-op switch when that is us already).
pg_as() {
  local user="$1"; shift
  if [[ "$(id -un)" == "$user" ]]; then
    "$@"
  else
    runuser -u "$user" -- "$@"
  fi
}
