"""MQTT binding values that change generated behaviour (QoS, retain)."""

from __future__ import annotations

from generator.refs import Node

DEFAULT_QOS = 1


def mqtt_operation_settings(*nodes: Node | None) -> tuple[int, bool]:
    """QoS and retain from the first node whose `bindings.mqtt` sets them; QoS 1 otherwise."""
    qos: int | None = None
    retain: bool | None = None
    for node in nodes:
        if node is None:
            continue
        bindings = node.get("bindings")
        mqtt = bindings.get("mqtt") if bindings is not None else None
        if mqtt is None or not isinstance(mqtt.value, dict):
            continue
        if qos is None and mqtt.value.get("qos") in (0, 1, 2):
            qos = int(mqtt.value["qos"])
        if retain is None and isinstance(mqtt.value.get("retain"), bool):
            retain = bool(mqtt.value["retain"])
    return (DEFAULT_QOS if qos is None else qos), bool(retain)
