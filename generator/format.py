"""The format stage: black on every generated Python file, compiled afterwards to be sure.

Black is most of a large project's generation time. This process formats while a worker makes
the models (workers.py). A large batch is cut into pieces at top-level definitions, which black
formats alone exactly as within their file, and this process and the workers take the pieces
from one queue, so that every core is busy until the end.
"""

from __future__ import annotations

import ast
import io
import queue
from concurrent.futures import Future
from typing import Any

from generator.cache import fingerprint, lookup, store
from generator.errors import Diagnostic, Failed, Location
from generator.workers import Pool, Worker, collector_paused

LINE_LENGTH = 100
PARALLEL_BYTES = 256 * 1024  # from this size on, a batch is shared with workers
PIECE_BYTES = 32 * 1024

Result = tuple[bool, str]  # (True, formatted) or (False, why black refused the source)
Piece = tuple[str, int, str]  # path, index within the file, source


class Formatting:
    """Files being formatted by this process and the pool's workers while the caller goes on."""

    def __init__(self, pool: Pool | None = None) -> None:
        self.pool = pool
        self.done: dict[str, str] = {}  # path -> formatted, from the cache
        self.sources: dict[str, str] = {}  # path -> source, to format
        self.counts: dict[str, int] = {}  # path -> its number of pieces
        self.results: dict[tuple[str, int], Result] = {}
        self.shared: queue.Queue[Piece | None] = queue.Queue()  # this process and workers take
        self.abandoned: list[Piece] = []  # taken by a worker that failed
        self.feeders: dict[Worker, Future[None]] = {}
        self.by_workers: list[Piece] = []  # what the workers formatted (the rest: this process)

    def add(self, files: dict[str, str]) -> None:
        """Start on the Python files among these; the cache answers what it has seen before."""
        misses: dict[str, str] = {}
        for path, text in files.items():
            if needs_black(path):
                found = lookup("black", _key(text))
                if found is None:
                    misses[path] = text
                else:
                    self.done[path] = found
        self.sources |= misses
        large = sum(len(text) for text in misses.values()) >= PARALLEL_BYTES
        shared = self._share(large)
        pieces = [
            (path, index, chunk)
            for path, text in misses.items()
            for index, chunk in enumerate(split(text) if large and shared else [text])
        ]
        for path, _, _ in pieces:
            self.counts[path] = self.counts.get(path, 0) + 1
        for piece in sorted(pieces, key=lambda p: -len(p[2])):  # longest first: even shares
            self.shared.put(piece)

    def work_until(self, pending: Future[Any]) -> None:
        """Format here until `pending` is done or nothing is left to take."""
        while not pending.done():
            piece = self._next()
            if piece is None:
                return
            self._run(piece)

    def finish(self) -> dict[str, str]:
        """Every file added, formatted and compiled. A bug in generated code is reported, never
        written."""
        while (piece := self._next()) is not None:
            self._run(piece)
        self._stop_feeders()
        for feeder in self.feeders.values():
            feeder.result()
        for piece in self.abandoned:
            self._run(piece)
        formatted = dict(self.done)
        for path, source in self.sources.items():
            chunks = [_checked(self.results[(path, i)], path) for i in range(self.counts[path])]
            formatted[path] = join(chunks)
            store("black", _key(source), formatted[path])
        for path, text in formatted.items():
            _check_compiles(text, path)
        return formatted

    def _share(self, large: bool) -> bool:
        """Whether workers take pieces too: the models' worker once its job is done, and for
        a large batch all the pool may have."""
        if self.pool is None or not self.pool.workers:
            return False
        workers = self.pool.grow() if large else self.pool.workers
        if not self.feeders:
            self.pool.stops.append(self._stop_feeders)
        for worker in workers:
            if worker not in self.feeders:
                self.feeders[worker] = self.pool.threads.submit(self._feed, worker)
        return True

    def _stop_feeders(self) -> None:
        for _ in self.feeders:
            self.shared.put(None)

    def _next(self) -> Piece | None:
        try:
            return self.shared.get_nowait()
        except queue.Empty:
            return None

    def _run(self, piece: Piece) -> None:
        path, index, source = piece
        self.results[(path, index)] = _format(source)

    def _feed(self, worker: Worker) -> None:
        """A thread that keeps one worker busy with pieces until the end of the batch."""
        assert self.pool is not None
        busy = self.pool.busy.get(worker)
        if busy is not None:
            busy.exception()  # waits: this worker makes the models first
        if worker.call("black", "") is None:  # black imported before a piece is taken
            return
        while (piece := self.shared.get()) is not None:
            answer = worker.call("black", piece[2])
            if answer is None:
                self.abandoned.append(piece)
                return
            self.results[piece[:2]] = (bool(answer[0]), str(answer[1]))
            self.by_workers.append(piece)


def format_files(files: dict[str, str]) -> dict[str, str]:
    """Every file, the Python ones formatted; the static runtime is formatted in this
    repository already and copied as it is."""
    batch = Formatting()
    batch.add(files)
    return {**files, **batch.finish()}


def format_python(source: str, name: str) -> str:
    """One file formatted (through the cache) and compiled."""
    return format_files({name: source})[name]


def needs_black(path: str) -> bool:
    return path.endswith(".py") and "/_runtime/" not in path


def split(source: str) -> list[str]:
    """A large module cut before top-level definitions into pieces of about PIECE_BYTES."""
    if len(source) <= PIECE_BYTES or any(s in source for s in ("fmt:", "yapf:", "\r")):
        return [source]
    lines = io.StringIO(source).readlines()  # as the parser counts lines: "\n" ends one
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    pieces: list[str] = []
    start = 0
    for row in _cuts(source, lines):
        if offsets[row] - start >= PIECE_BYTES:
            pieces.append(source[start : offsets[row]])
            start = offsets[row]
    pieces.append(source[start:])
    return pieces


def _cuts(source: str, lines: list[str]) -> list[int]:
    """Rows (0-based) where a top-level definition starts after exactly two blank lines that
    follow code: black puts two blank lines there whatever came before, and formats the
    definition alone as within the file. Not after a comment, which may belong to it."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # black will say what is wrong
    rows = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            row = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            before = [line.strip() for line in lines[max(row - 3, 0) : row]]
            if row >= 3 and before[1:] == ["", ""] and before[0][:1] not in ("", "#"):
                rows.append(row)
    return rows


def join(chunks: list[str]) -> str:
    """Formatted pieces of one module put back together, two blank lines between them."""
    if len(chunks) == 1:
        return chunks[0]
    return "\n\n\n".join(chunk.strip("\n") for chunk in chunks) + "\n"


def _key(source: str) -> tuple[str, ...]:
    return (fingerprint("black"), str(LINE_LENGTH), source)


def _check_compiles(formatted: str, name: str) -> None:
    """Black parses, but a duplicate argument or a misplaced `return` only fails to compile."""
    try:
        compile(formatted, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        text = f"internal error: generated {name} does not compile: {exc.msg} (line {exc.lineno})"
        raise Failed([Diagnostic(text, Location(name))]) from None


def _checked(result: Result, name: str) -> str:
    formatted, text = result
    if not formatted:
        message = f"internal error: generated {name} is not valid Python: {text}"
        raise Failed([Diagnostic(message, Location(name))])
    return text


def _format(source: str) -> Result:
    import black  # only on a cache miss: importing black costs more than the rest of a run
    from black.mode import TargetVersion
    from black.parsing import InvalidInput

    mode = black.Mode(line_length=LINE_LENGTH, target_versions={TargetVersion.PY310})
    if source.endswith("\n\n"):  # black drops blank lines at the end, but slowly: 2x the time
        source = source.rstrip("\n") + "\n"
    try:
        with collector_paused():
            return True, black.format_str(source, mode=mode)
    except InvalidInput as exc:
        return False, str(exc)


def black_job(source: str) -> Result:
    """The formatting job of a worker process (workers.py)."""
    return _format(source)
