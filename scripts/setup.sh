#!/usr/bin/env bash
# Installs what the generator, the example and the tests need on a fresh Debian/Ubuntu machine:
# the mosquitto broker and clients, PostgreSQL (the example stores telemetry there), the other
# brokers of the test matrix (RabbitMQ with its MQTT plugin; aedes, a Node.js library, into
# tests/brokers/node_modules with `npm ci`) -- the tests start their own servers on free ports,
# nothing is left running -- then this package with its development extras in a virtualenv of
# its own, `.venv` (a stock Debian refuses `pip install` into the system Python). Safe to run again.
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
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || packages+=(rabbitmq-server)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
[ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"

# aedes 2 needs Node.js 20 or later; with an older one its tests skip and say why.
if node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  (cd tests/brokers && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "Node.js $(node --version) is older than 20: the aedes tests will be skipped" >&2
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "installed into .venv; run the tests with: .venv/bin/python -m pytest"
