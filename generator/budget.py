"""What one run may spend on a document: bytes read, nodes built, levels of nesting.

An untrusted document must not cost more than a large real one. A YAML alias bomb of a few
hundred bytes stands for a billion nodes, eight levels of ten `$ref`s for a hundred million, and
ten thousand nested brackets overflow every recursive stage. The whole document (every file it
references, local or fetched) draws on one budget, checked before anything is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from generator.errors import Diagnostic, Failed, Location

MIB = 1024 * 1024
# Deeper than any real document by far, and shallow enough for every recursive stage after the
# loader (the Python schema validator gives up near 240 levels).
MAX_DEPTH = 128
SIZE_FLAG = "--max-size MIB raises the limit"
NODES_FLAG = "--max-nodes N raises the limit"


@dataclass(frozen=True)
class Limits:
    """Four times what a 1,000-channel document needs (1.5 MB, 124,000 nodes)."""

    max_bytes: int = 10 * MIB
    max_nodes: int = 500_000

    def too_many_nodes(self, counted: str = "") -> str:
        return f"the document has more than {self.max_nodes:,} nodes{counted}: {NODES_FLAG}"


def too_deep(counted: str = "") -> str:
    return f"nested deeper than {MAX_DEPTH} levels{counted}"


@dataclass
class Budget:
    """What is left of the limits for this run."""

    limits: Limits = field(default_factory=Limits)
    bytes_used: int = 0
    nodes_used: int = 0

    @property
    def bytes_left(self) -> int:
        return max(0, self.limits.max_bytes - self.bytes_used)

    def spend_bytes(self, count: int, location: Location) -> None:
        if count > self.bytes_left:
            size = f"{self.limits.max_bytes / MIB:g} MiB"
            message = f"the document is larger than {size} (with the files it references)"
            raise Failed([Diagnostic(f"{message}: {SIZE_FLAG}", location)])
        self.bytes_used += count

    def spend_nodes(self, count: int) -> bool:
        """Take `count` nodes; False (nothing taken) when that would pass the limit."""
        if self.nodes_used + count > self.limits.max_nodes:
            return False
        self.nodes_used += count
        return True
