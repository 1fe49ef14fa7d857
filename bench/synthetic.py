"""Synthetic AsyncAPI 2.6 documents of any size, for the generation benchmark.

AsyncAPI 2.6 because the official generator's python-paho template reads 2.x only: both
generators get the same document. Each channel has a parameterised address and one message whose
payload, a component schema, has eight fields (an enum, a date-time, a nested object, an array
among them); the service receives on every channel and sends on every fourth. Names and values
vary with the index so nothing deduplicates away.

    python bench/synthetic.py 500 > doc.yaml
"""

from __future__ import annotations

import sys
from typing import Any

import yaml


def payload(index: int) -> dict[str, Any]:
    """Channel `index`'s payload schema."""
    return {
        "type": "object",
        "required": ["deviceId", "state", "measuredAt"],
        "properties": {
            "deviceId": {"type": "string", "description": f"Device of stream {index}."},
            "state": {"type": "string", "enum": [f"idle{index}", f"busy{index}", "off"]},
            "measuredAt": {"type": "string", "format": "date-time"},
            "value": {"type": "number", "minimum": -1000, "maximum": 1000},
            "count": {"type": "integer", "minimum": 0},
            "ok": {"type": "boolean"},
            "position": {
                "type": "object",
                "properties": {
                    "lat": {"type": "number"},
                    "lon": {"type": "number"},
                    "label": {"type": "string", "maxLength": 40},
                },
            },
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
        },
    }


def _channel(index: int, message: str) -> dict[str, Any]:
    operation = {"message": {"$ref": f"#/components/messages/{message}"}}
    channel: dict[str, Any] = {
        "parameters": {
            "siteId": {"schema": {"type": "string"}},
            "deviceId": {"description": "The device.", "schema": {"type": "string"}},
        },
        "publish": {"operationId": f"receive{message}", **operation},
    }
    if index % 4 == 0:
        channel["subscribe"] = {"operationId": f"send{message}", **operation}
    return channel


def document(channels: int) -> dict[str, Any]:
    """An AsyncAPI 2.6 document with `channels` channels."""
    doc: dict[str, Any] = {
        "asyncapi": "2.6.0",
        "info": {"title": f"Synthetic {channels}", "version": "1.0.0"},
        "servers": {"broker": {"url": "localhost:1883", "protocol": "mqtt"}},
        "channels": {},
        "components": {"messages": {}, "schemas": {}},
    }
    for index in range(channels):
        message = f"Reading{index}"
        doc["components"]["schemas"][message] = payload(index)
        doc["components"]["messages"][message] = {
            "name": message,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{message}"},
        }
        address = f"site/{{siteId}}/stream{index}/{{deviceId}}"
        doc["channels"][address] = _channel(index, message)
    return doc


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    yaml.safe_dump(document(count), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
