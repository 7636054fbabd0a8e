"""Error-line templates, mined with Drain and remembered across runs, so a new error pattern stands out
from one seen before.

Only the Drain algorithm of drain3 is used (`drain3.drain.Drain`), never its `TemplateMiner` persistence:
that stores state with jsonpickle, whose decoding runs code named in the file, and whoever can write the
data directory must not get code execution from it. The state is plain JSON instead
(`<data_dir>/observe/templates.json`: each known template, its count, first and last seen), validated
with pydantic on load; a corrupt, hostile or oversized file is ignored with a logged warning (the miner
starts empty and the next write replaces it). The miner is seeded from the known templates, again whenever
another process has rewritten the file.

Concurrency: a lock file (`templates.lock`, flock) is held from reading the known templates to writing
them back, so two processes observing at once take turns and neither loses the other's templates. A
process that cannot take the lock within `LOCK_TIMEOUT_SECONDS` (or cannot write the data directory)
still answers — against the templates it could read — and does not write; it logs why.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from drain3.drain import Drain  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from operate_mcp.fileio import atomic_write
from operate_mcp.model.observation import TemplateCount

logger = logging.getLogger(__name__)

MAX_CLUSTERS = 1000  # templates remembered; beyond it the least recently seen is forgotten
MAX_FILE_BYTES = 4 * 1024 * 1024  # a state file larger than this is refused, not read
MAX_TEMPLATE_CHARS = 2000
MAX_LINE_CHARS = 1000  # of one masked line handed to the miner
SIMILARITY = 0.7  # stricter than drain3's 0.4: the masks take the variables; the words left are the error
LOCK_TIMEOUT_SECONDS = 10.0

# Variable parts, masked before mining, in this order (no mask contains a digit, so none masks another).
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r'"(?:[^"\\\n]|\\.){0,500}"'), "<STR>"),
    (re.compile(r"(?<![\w'])'[^'\n]{0,500}'(?!\w)"), "<STR>"),
    (re.compile(r"(?<![\w-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])"),
     "<UUID>"),
    (re.compile(r"(?<![\w.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d{1,5})?(?![\w]|\.\d)"), "<IP>"),
    (re.compile(r"(?<![\w])0[xX][0-9a-fA-F]{1,64}(?!\w)"), "<HEX>"),
    (re.compile(r"(?<![\w-])(?=[a-fA-F]*\d)[0-9a-fA-F]{8,}(?![\w-])"), "<HEX>"),
    (re.compile(r"(?<![\w-])(?=[A-Za-z_-]*\d)[\w-]+"), "<NUM>"),
)


def mask(line: str) -> str:
    """The line with its variable parts (quoted strings, UUIDs, IPs, hex ids, numbers) replaced by <MASKS>."""
    text = line[:MAX_LINE_CHARS]
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())[:MAX_LINE_CHARS]


class KnownTemplate(BaseModel):
    """One template as the state file keeps it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    template: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)
    count: int = Field(ge=1, le=10**15)
    first_seen: datetime
    last_seen: datetime


class TemplatesFile(BaseModel):
    """`<data_dir>/observe/templates.json`: plain data, nothing in it is ever run."""

    model_config = ConfigDict(extra="forbid", strict=True)

    version: Literal[1] = 1
    templates: list[KnownTemplate] = Field(default_factory=list, max_length=100 * MAX_CLUSTERS)


@dataclass
class _Tally:
    count: int
    first_seen: datetime
    last_seen: datetime


class _Miner:
    """Typed wrapper over drain3's Drain (which has no type hints): a line in, its cluster id and template out."""

    def __init__(self, max_clusters: int, similarity: float) -> None:
        self._drain: Any = Drain(depth=4, sim_th=similarity, max_children=100, max_clusters=max_clusters)

    def add(self, line: str) -> tuple[int, str]:
        cluster, _change = self._drain.add_log_message(line)
        return int(cluster.cluster_id), str(cluster.get_template())

    def alive(self) -> dict[int, str]:
        """The clusters still held (an LRU evicts beyond the cap): id -> template."""
        return {int(c.cluster_id): str(c.get_template()) for c in list(self._drain.id_to_cluster.values())}


class ErrorTemplates:
    """Error-line templates of every run on this data directory; `observe` tells new patterns from known."""

    def __init__(self, data_dir: Path, *, max_clusters: int = MAX_CLUSTERS, similarity: float = SIMILARITY) -> None:
        if max_clusters < 1:
            raise ValueError(f"max_clusters must be at least 1, not {max_clusters}")
        self.dir = data_dir / "observe"
        self.path = self.dir / "templates.json"
        self.max_clusters = max_clusters
        self.similarity = similarity
        self._thread_lock = threading.Lock()
        self._cache: tuple[tuple[int, int, int] | None, _Miner, dict[int, _Tally]] | None = None

    def observe(self, lines: Iterable[str]) -> list[TemplateCount]:
        """Mine `lines` (error lines, trace headlines) and remember them: one count per template, marked
        new when no earlier call — in this process or another, on this data directory — had seen it.
        New templates first, then the most frequent."""
        masked = [m for m in (mask(line) for line in lines) if m]
        if not masked:
            return []
        now = datetime.now(UTC)
        with self._locked() as may_write:
            miner, tallies = self._seeded()
            known_ids = set(tallies)
            seen: dict[int, int] = {}
            templates: dict[int, str] = {}
            for line in masked:
                cid, template = miner.add(line)
                seen[cid] = seen.get(cid, 0) + 1
                templates[cid] = template
                tally = tallies.get(cid)
                if tally is None:
                    tallies[cid] = _Tally(1, now, now)
                else:
                    tally.count += 1
                    tally.last_seen = now
            if may_write and self._save(miner.alive(), tallies):
                self._cache = (self._file_key(), miner, tallies)
        found = [TemplateCount(template=templates[cid], count=n, new=cid not in known_ids) for cid, n in seen.items()]
        return sorted(found, key=lambda t: (not t.new, -t.count))

    def _seeded(self) -> tuple[_Miner, dict[int, _Tally]]:
        """A miner holding the known templates, and their tallies by cluster id. Seeding is the costly part,
        so the miner of the last save is reused while the file is still the one it wrote."""
        cache, self._cache = self._cache, None  # whatever happens next, a half-updated miner is not reused
        if cache is not None and cache[0] is not None and cache[0] == self._file_key():
            return cache[1], cache[2]
        miner = _Miner(self.max_clusters, self.similarity)
        tallies: dict[int, _Tally] = {}
        for known in self.known():
            cid, _ = miner.add(known.template)
            tally = tallies.get(cid)
            if tally is None:
                tallies[cid] = _Tally(known.count, known.first_seen, known.last_seen)
            else:  # two known templates the miner now takes for one
                tally.count += known.count
                tally.first_seen = min(tally.first_seen, known.first_seen)
                tally.last_seen = max(tally.last_seen, known.last_seen)
        return miner, tallies

    def _file_key(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return None
        return info.st_ino, info.st_size, info.st_mtime_ns

    def known(self) -> list[KnownTemplate]:
        """The remembered templates, least recently seen first (at most `max_clusters`); [] if the file is
        missing, and — with a warning — if it is corrupt, hostile or too large."""
        try:
            data = self._read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            logger.warning("error templates file %s cannot be read (%s); starting with no known templates",
                           self.path, exc)
            return []
        if data is None:
            logger.warning("error templates file %s is not a regular file of at most %d bytes; starting with no "
                           "known templates (it is replaced on the next write)", self.path, MAX_FILE_BYTES)
            return []
        try:
            state = TemplatesFile.model_validate_json(data)
        except (ValidationError, ValueError) as exc:
            logger.warning("error templates file %s is not a valid templates file (%s); starting with no known "
                           "templates (it is replaced on the next write)", self.path, str(exc)[:300])
            return []
        ordered = sorted(state.templates, key=lambda t: t.last_seen)
        return ordered[-self.max_clusters:]

    def _read(self) -> bytes | None:
        """The file's bytes, or None when it is not a regular file or is too large. Never follows a symlink
        and never blocks on a FIFO put in its place."""
        fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
                return None
            with os.fdopen(os.dup(fd), "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
            return data if len(data) <= MAX_FILE_BYTES else None
        finally:
            os.close(fd)

    def _save(self, alive: dict[int, str], tallies: dict[int, _Tally]) -> bool:
        kept = [
            KnownTemplate(template=template[:MAX_TEMPLATE_CHARS], count=min(tallies[cid].count, 10**15),
                          first_seen=tallies[cid].first_seen, last_seen=tallies[cid].last_seen)
            for cid, template in alive.items()
            if cid in tallies and template.strip()
        ]
        kept.sort(key=lambda t: t.last_seen)
        for cid in set(tallies) - set(alive):  # forgotten by the miner (beyond the cap): forgotten here too
            del tallies[cid]
        try:
            atomic_write(self.path, TemplatesFile(templates=kept[-self.max_clusters:]).model_dump_json(indent=1))
        except OSError as exc:
            logger.warning("error templates could not be saved to %s (%s); this run's templates are not remembered",
                           self.path, exc)
            return False
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[bool]:
        """Yields whether the lock is held (and so the file may be rewritten)."""
        with self._thread_lock:
            try:
                self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self.dir / "templates.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            except OSError as exc:
                logger.warning("error templates lock in %s cannot be opened (%s); templates are read, not saved",
                               self.dir, exc)
                yield False
                return
            try:
                deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            logger.warning("error templates lock %s is held by another process for more than "
                                           "%.0f s; templates are read, not saved", self.dir / "templates.lock",
                                           LOCK_TIMEOUT_SECONDS)
                            yield False
                            return
                        time.sleep(0.02)
                try:
                    yield True
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
