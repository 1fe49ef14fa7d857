#!/usr/bin/env bash
# The main job, end to end: regenerate the IoT example from its spec (hand-written handlers are
# kept), start a local broker, run the service, publish the seed's samples plus a hot device, an
# erroring device and a bad message, print what the service logged and sent, stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "== asyncapi-pygen generate examples/mqtt/asyncapi.yaml --output examples/mqtt"
asyncapi-pygen generate examples/mqtt/asyncapi.yaml --output examples/mqtt

printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$work/mosquitto.conf"
"$mosquitto_bin" -c "$work/mosquitto.conf" >/dev/null 2>&1 & pids+=($!)
until mosquitto_pub -h 127.0.0.1 -p "$port" -t demo/ping -n 2>/dev/null; do sleep 0.1; done

(cd examples/mqtt && MQTT_HOST=127.0.0.1 MQTT_PORT=$port HEARTBEAT_INTERVAL=1 \
  exec python3 -m iot_device_management_service) > "$work/service.log" 2>&1 & service=$!
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$port" -v -t alerts/critical -t 'devices/+/commands' \
  -t system/heartbeat > "$work/sent.log" & pids+=($!)
until grep -q "connected to" "$work/service.log"; do sleep 0.1; done

pub() { mosquitto_pub -h 127.0.0.1 -p "$port" -t "$1" -m "$2"; }
pub devices/sensor001/telemetry '{"deviceId": "sensor001", "timestamp": "2024-01-15T10:30:00Z",
  "sensors": {"temperature": 23.5, "humidity": 65.2, "pressure": 1013.25, "battery": 87.3},
  "location": {"latitude": 37.7749, "longitude": -122.4194}}'
pub devices/sensor001/status '{"deviceId": "sensor001", "status": "online",
  "health": {"cpu": 45.2, "memory": 67.8, "disk": 23.1, "uptime": 86400}, "lastSeen": "2024-01-15T10:30:00Z"}'
pub devices/boiler-7/telemetry '{"deviceId": "boiler-7", "timestamp": "2024-01-15T10:31:00Z", "sensors": {"temperature": 85.0}}'
pub devices/pump-3/status '{"deviceId": "pump-3", "status": "error", "lastSeen": "2024-01-15T10:31:00Z"}'
pub devices/sensor001/telemetry 'this is not JSON'
until grep -q "devices/pump-3/commands" "$work/sent.log" && grep -q "rejected message" "$work/service.log"; do sleep 0.1; done
sleep 1.5  # let one more heartbeat go out, for the show

kill -TERM "$service"; wait "$service" && echo "(service exited with status 0)"
echo; echo "== what the service logged"; cat "$work/service.log"
echo; echo "== what the service sent (mosquitto_sub)"; cat "$work/sent.log"
