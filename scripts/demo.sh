#!/usr/bin/env bash
# The main job, end to end: regenerate the IoT example from its spec (hand-written handlers are
# kept), start a local broker, run the service, publish the seed's samples plus a hot device, an
# erroring device and a bad message, then a fleet (20 devices, 10 readings each, a second apart up
# to now), and print what the service logged, sent and stored (SQLite, the default DATABASE_URL,
# in a temporary folder); stop everything. Every wait is bounded; on a failure the service's log
# is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] && "$python" -c 'import sqlalchemy, polyfactory' 2>/dev/null ||
  { echo "demo: run scripts/setup.sh first (the demo needs the development extras)" >&2; exit 1; }
work=$(mktemp -d)
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# wait_for SECONDS WHAT COMMAND...: run COMMAND every 0.1 s until it succeeds, at most SECONDS.
wait_for() {
  local seconds=$1 what=$2; shift 2
  local tries=$((seconds * 10))
  until "$@" 2>/dev/null; do
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then
      echo "demo: gave up after ${seconds}s waiting for $what" >&2
      [ -f "$work/service.log" ] && { echo "== service log" >&2; cat "$work/service.log" >&2; }
      exit 1
    fi
    sleep 0.1
  done
}

echo "== asyncapi-pygen generate examples/mqtt/asyncapi.yaml --output examples/mqtt"
"$python" -m generator generate examples/mqtt/asyncapi.yaml --output examples/mqtt

printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$work/mosquitto.conf"
"$mosquitto_bin" -c "$work/mosquitto.conf" >/dev/null 2>&1 & pids+=($!)
wait_for 10 "mosquitto" mosquitto_pub -h 127.0.0.1 -p "$port" -t demo/ping -n

(cd examples/mqtt && MQTT_HOST=127.0.0.1 MQTT_PORT=$port HEARTBEAT_INTERVAL=1 \
  DATABASE_URL="sqlite:///$work/telemetry.db" exec "../../$python" -m iot_device_management_service) > "$work/service.log" 2>&1 & service=$!
pids+=("$service")
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$port" -v -t alerts/critical -t 'devices/+/commands' \
  -t system/heartbeat > "$work/sent.log" & pids+=($!)
wait_for 20 "the service to connect" grep -q "connected to" "$work/service.log"

pub() { mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -t "$1" -m "$2"; }
pub devices/sensor001/telemetry '{"deviceId": "sensor001", "timestamp": "2024-01-15T10:30:00Z",
  "sensors": {"temperature": 23.5, "humidity": 65.2, "pressure": 1013.25, "battery": 87.3},
  "location": {"latitude": 37.7749, "longitude": -122.4194}}'
pub devices/sensor001/status '{"deviceId": "sensor001", "status": "online",
  "health": {"cpu": 45.2, "memory": 67.8, "disk": 23.1, "uptime": 86400}, "lastSeen": "2024-01-15T10:30:00Z"}'
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
pub devices/boiler-7/telemetry '{"deviceId": "boiler-7", "timestamp": "'"$now"'", "sensors": {"temperature": 85.0}}'
pub devices/pump-3/status '{"deviceId": "pump-3", "status": "error", "lastSeen": "'"$now"'"}'
pub devices/sensor001/telemetry 'this is not JSON'
wait_for 20 "the reboot command" grep -q "devices/pump-3/commands" "$work/sent.log"
wait_for 20 "the rejected message" grep -q "rejected" "$work/service.log"

echo "== a fleet: 20 devices send 10 readings each, a second apart up to now (mosquitto_pub)"
"$python" - "$work/fleet" <<'PY'
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

folder = Path(sys.argv[1])
folder.mkdir()
now = datetime.now(timezone.utc).replace(microsecond=0)
rng = random.Random(1)
for number in range(20):
    device = f"sensor-{number:03d}"
    readings = []
    for second in range(10, 0, -1):
        moment = (now - timedelta(seconds=second)).isoformat().replace("+00:00", "Z")
        sensors = {
            "temperature": round(rng.uniform(18, 30), 1),
            "humidity": round(rng.uniform(30, 70), 1),
            "battery": round(rng.uniform(20, 100), 1),
        }
        readings.append(json.dumps({"deviceId": device, "timestamp": moment, "sensors": sensors}))
    (folder / device).write_text("\n".join(readings) + "\n")
PY
publishers=()
for file in "$work"/fleet/*; do
  mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -t "devices/$(basename "$file")/telemetry" -l < "$file" &
  publishers+=($!)
done
for pid in "${publishers[@]}"; do wait "$pid"; done
fleet_stored() {
  "$python" -c 'import sqlite3, sys
query = "SELECT count(*) FROM telemetry WHERE device_id LIKE ?"
sys.exit(sqlite3.connect(sys.argv[1]).execute(query, ("sensor-%",)).fetchone()[0] != 200)' \
    "$work/telemetry.db"
}
wait_for 30 "the fleet's 200 readings to be stored" fleet_stored
heartbeats=$(grep -c system/heartbeat "$work/sent.log" || true)
more_heartbeats() { [ "$(grep -c system/heartbeat "$work/sent.log")" -gt "$heartbeats" ]; }
wait_for 10 "one more heartbeat" more_heartbeats

kill -TERM "$service"
for _ in $(seq 1 300); do kill -0 "$service" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$service" 2>/dev/null; then
  echo "demo: the service did not stop within 30 s of SIGTERM" >&2; cat "$work/service.log" >&2; exit 1
fi
wait "$service" && echo "(service exited with status 0)"
echo; echo "== what the service logged"; cat "$work/service.log"
echo; echo "== what the service sent (mosquitto_sub)"; cat "$work/sent.log"
echo; echo "== what the service stored ($work/telemetry.db)"
"$python" - "$work/telemetry.db" <<'PY'
import sqlite3
import sys

db = sqlite3.connect(sys.argv[1])
count, devices = db.execute("SELECT count(*), count(DISTINCT device_id) FROM telemetry").fetchone()
print(f"telemetry: {count} row(s) from {devices} device(s)")
fleet = db.execute(
    "SELECT count(*), count(DISTINCT device_id), min(ts), max(ts) FROM telemetry"
    " WHERE device_id LIKE 'sensor-%'"
).fetchone()
print("  the fleet: {} row(s) from {} device(s), taken from {} to {} (UTC)".format(*fleet))
print("  the seed's sample and the hot boiler:")
query = (
    "SELECT device_id, ts, temperature, humidity, pressure, battery, latitude, longitude"
    " FROM telemetry WHERE device_id IN ('sensor001', 'boiler-7') ORDER BY ts"
)
for row in db.execute(query):
    print("    ", row)
print("devices (last status, last seen, errors), those with a status:")
for row in db.execute("SELECT * FROM devices WHERE last_status IS NOT NULL ORDER BY device_id"):
    print("  ", row)
PY
