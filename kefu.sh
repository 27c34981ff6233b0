#!/usr/bin/env bash
# kefu — the two commands of the README:
#   ./kefu.sh up     start MongoDB + Redis (embedded unless MONGODB_URI / REDIS_URL are set), web and worker
#   ./kefu.sh test   run the whole test suite against throwaway real servers
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
# The virtualenv lives outside the source tree, one per checkout (the libraries installed there are not part of
# the project, so a search of the tree finds only our code); .venv is a link to it. KEFU_VENV picks another place.
VENV_HOME=${KEFU_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/kefu/venv-$(pwd -P | sha256sum | cut -c1-12)}
VENV=.venv

ensure_venv() {
  if [ -d "$VENV" ] && [ ! -L "$VENV" ]; then
    echo "[kefu] moving the virtualenv out of the source tree, to $VENV_HOME …"
    rm -rf "$VENV"
  fi
  if [ ! -x "$VENV_HOME/bin/python" ]; then
    echo "[kefu] creating virtualenv in $VENV_HOME …"
    mkdir -p "$(dirname "$VENV_HOME")"
    "$PYTHON" -m venv "$VENV_HOME"
  fi
  ln -sfn "$VENV_HOME" "$VENV"
  # Install only when requirements.txt changed since the last install.
  local stamp="$VENV_HOME/.requirements.sha256"
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
    exec "$VENV/bin/python" -m kefu.runtime.launcher up
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
