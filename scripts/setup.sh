#!/usr/bin/env bash
# Installs what the generator, the example and the tests need on a fresh Debian/Ubuntu machine:
# the mosquitto broker and clients, PostgreSQL (the example stores telemetry there; the tests start
# their own servers, nothing is left running), then this package with its
# development extras in a virtualenv of its own, `.venv` (a stock Debian refuses `pip install`
# into the system Python). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_install() {
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

packages=()
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || packages+=(mosquitto)
command -v mosquitto_pub >/dev/null || packages+=(mosquitto-clients)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
[ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "installed into .venv; run the tests with: .venv/bin/python -m pytest"
