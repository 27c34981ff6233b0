#!/usr/bin/env bash
# kefu — the two commands of the README:
#   ./kefu.sh up     start MongoDB + Redis (embedded unless MONGODB_URI / REDIS_URL are set), web and worker
#   ./kefu.sh test   run the whole test suite against throwaway real servers
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[kefu] creating virtualenv in $VENV …"
    "$PYTHON" -m venv "$VENV"
  fi
  # Install only when requirements.txt changed since the last install.
  local stamp="$VENV/.requirements.sha256"
  local want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[kefu] installing requirements.txt …"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
    echo "$want" > "$stamp"
  fi
  # The English catalogue is compiled here, so the .mo never drifts from the .po in git.
  "$VENV/bin/pybabel" -q compile -d translations
  "$VENV/bin/pybabel" -q compile -D admin -d translations
}

case "${1:-}" in
  up)
    ensure_venv
    exec "$VENV/bin/python" -m kefu.launcher up
    ;;
  test)
    ensure_venv
    shift
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./kefu.sh up | ./kefu.sh test [pytest args]" >&2
    exit 2
    ;;
esac
