#!/usr/bin/env bash
# The main job, end to end: regenerate the IoT example from its spec (hand-written handlers are
# kept), start a local broker, run the service, publish the seed's samples plus a hot device, an
# erroring device and a bad message, then 200 simulated device messages, print what the service
# logged, sent and stored (SQLite, the default DATABASE_URL, in a temporary folder), stop everything.
# Every wait is bounded; on a failure the service's log is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || { echo "run scripts/setup.sh first" >&2; exit 1; }
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
pub devices/boiler-7/telemetry '{"deviceId": "boiler-7", "timestamp": "2024-01-15T10:31:00Z", "sensors": {"temperature": 85.0}}'
pub devices/pump-3/status '{"deviceId": "pump-3", "status": "error", "lastSeen": "2024-01-15T10:31:00Z"}'
pub devices/sensor001/telemetry 'this is not JSON'
wait_for 20 "the reboot command" grep -q "devices/pump-3/commands" "$work/sent.log"
wait_for 20 "the rejected message" grep -q "rejected" "$work/service.log"
echo "== python -m iot_device_management_service simulate --count 200 --seed 1 (the devices, simulated)"
(cd examples/mqtt && MQTT_HOST=127.0.0.1 MQTT_PORT=$port LOG_LEVEL=WARNING \
  timeout 60 "../../$python" -m iot_device_management_service simulate --count 200 --seed 1)
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
print(f"telemetry: {count} row(s) from {devices} device(s); the seed's sample and the hot boiler:")
query = (
    "SELECT device_id, ts, temperature, humidity, pressure, battery, latitude, longitude"
    " FROM telemetry WHERE device_id IN ('sensor001', 'boiler-7') ORDER BY ts"
)
for row in db.execute(query):
    print("  ", row)
print("devices (last status, last seen, errors), those with a status:")
for row in db.execute("SELECT * FROM devices WHERE last_status IS NOT NULL ORDER BY device_id"):
    print("  ", row)
PY
