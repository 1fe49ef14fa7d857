"""Synthetic AsyncAPI 3.0 documents of any size, for the generation benchmark.

Each channel has a parameterised address, one message whose payload has eight fields (an enum, a
date-time, a nested object, an array among them), a receive operation, and every fourth channel a
send operation too. Names and values vary with the index so nothing deduplicates away.

    python bench/synthetic.py 500 > doc.yaml
"""

from __future__ import annotations

import sys
from typing import Any

import yaml


def _payload(index: int) -> dict[str, Any]:
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


def document(channels: int) -> dict[str, Any]:
    """An AsyncAPI 3.0 document with `channels` channels."""
    doc: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {"title": f"Synthetic {channels}", "version": "1.0.0"},
        "servers": {"broker": {"host": "localhost:1883", "protocol": "mqtt"}},
        "channels": {},
        "operations": {},
        "components": {"messages": {}, "schemas": {}},
    }
    for index in range(channels):
        name = f"stream{index}"
        message = f"Reading{index}"
        doc["components"]["schemas"][message] = _payload(index)
        doc["components"]["messages"][message] = {
            "name": message,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{message}"},
        }
        doc["channels"][name] = {
            "address": f"site/{{siteId}}/stream{index}/{{deviceId}}",
            "parameters": {"siteId": {}, "deviceId": {"description": "The device."}},
            "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        }
        doc["operations"][f"receive{message}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{message}"}],
        }
        if index % 4 == 0:
            doc["operations"][f"send{message}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{name}"},
                "messages": [{"$ref": f"#/channels/{name}/messages/{message}"}],
            }
    return doc


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    yaml.safe_dump(document(count), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
