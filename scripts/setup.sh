#!/usr/bin/env bash
# Installs what the generator, the example and the tests need on a fresh Debian/Ubuntu machine:
# the mosquitto broker and clients (the tests start their own broker) and this package with its
# development extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ] || ! command -v mosquitto_pub >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'
