"""Normalize a validated document of any supported version into the intermediate model."""

from __future__ import annotations

from generator.errors import Diagnostic
from generator.model import Api
from generator.normalize import v2, v3
from generator.refs import Workspace


def normalize(ws: Workspace, version: str, package: str | None) -> tuple[Api, list[Diagnostic]]:
    """Build the model; semantic errors (undeclared parameters, ...) come back as diagnostics."""
    if version.startswith("3."):
        return v3.normalize(ws, version, package)
    return v2.normalize(ws, version, package)
