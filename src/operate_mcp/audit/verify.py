"""Checks the audit log's hash chain and signed checkpoints, and says which entry broke and where.

Used by `operate-mcp audit verify` (cron / systemd timer) and by replay before it trusts an entry.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ValidationError

from operate_mcp.audit.checkpoint import (
    CHECKPOINTS_FILE,
    Checkpoint,
    default_signing_key_path,
    load_public_key,
    parse_checkpoints,
    public_key_path_for,
    witness_file,
)
from operate_mcp.audit.log import AUDIT_DIR, GENESIS_HASH, AuditEntry, day_files, entry_hash, find_entry

ProblemKind = Literal[
    "edited",
    "reordered",
    "deleted",
    "truncated",
    "torn_tail",
    "tail_rewritten",
    "bad_signature",
    "missing_checkpoint_key",
    "checkpoints_deleted",
    "checkpoint_missing",
    "checkpoint_rewritten",
    "witness_unavailable",
]
ALERTS_FILE = Path("alerts") / "audit-integrity.log"


class Problem(BaseModel):
    """One integrity failure: what kind, where (file, line, seq), and a sentence saying so."""

    kind: ProblemKind
    file: str | None = None
    line: int | None = None
    seq: int | None = None
    message: str


class VerifyReport(BaseModel):
    """The outcome of one verification; `ok` is False when there is any problem."""

    ok: bool
    entries_checked: int
    files: list[str]
    problems: list[Problem]
    checkpoints_checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    verified_up_to_seq: int | None = None  # every entry up to this seq (in the window) verified
    window_from: dt.date | None = None
    window_to: dt.date | None = None
    witness: str | None = None  # the witness copy compared with checkpoints.log, when there was one
    witness_checkpoints_checked: int = 0


@dataclass
class _Record:
    file: str
    line: int
    seq: int
    hash: str
    prev_hash: str
    content_ok: bool

    def where(self) -> str:
        return f"{self.file} line {self.line}"


@dataclass
class _Torn:
    file: str
    line: int
    length: int
    reason: str


def resolve_window(
    *,
    date: dt.date | None = None,
    days: int | None = None,
    from_date: dt.date | None = None,
    to_date: dt.date | None = None,
    today: dt.date | None = None,
) -> tuple[dt.date | None, dt.date | None]:
    """The inclusive UTC day range to check; None ends are open. `days=N` is today and the N-1 before."""
    chosen = sum(x is not None for x in (date, days)) + (from_date is not None or to_date is not None)
    if chosen > 1:
        raise ValueError("choose one of date, days, or from_date/to_date")
    if date is not None:
        return date, date
    if days is not None:
        if days < 1:
            raise ValueError("days must be at least 1")
        today = today or dt.datetime.now(dt.UTC).date()
        return today - dt.timedelta(days=days - 1), None
    if from_date is not None and to_date is not None and from_date > to_date:
        raise ValueError(f"from_date {from_date} is after to_date {to_date}")
    return from_date, to_date


def _last_entry(path: Path) -> tuple[AuditEntry, int] | None:
    """The last parseable entry of a file and its line number."""
    lines = path.read_bytes().split(b"\n")
    for index in range(len(lines) - 1, -1, -1):
        try:
            return AuditEntry.model_validate(json.loads(lines[index])), index + 1
        except (ValueError, ValidationError):
            continue
    return None


def _read_day_file(
    path: Path, is_newest: bool, records: list[_Record], problems: list[Problem], torn: list[_Torn]
) -> None:
    raw = path.read_bytes()
    terminated = raw.endswith(b"\n")
    lines = raw.split(b"\n")
    if terminated or not raw:
        lines = lines[:-1]
    for number, line in enumerate(lines, start=1):
        is_last = number == len(lines)
        try:
            obj = json.loads(line)
            entry = AuditEntry.model_validate(obj)
        except (ValueError, ValidationError):
            obj, entry = None, None
        if is_last and not terminated:
            torn.append(_Torn(path.name, number, len(line), "ends without a newline"))
            continue
        if entry is None or obj is None:
            if is_last and is_newest:
                torn.append(_Torn(path.name, number, len(line), "is not a valid audit entry"))
            else:
                problems.append(
                    Problem(
                        kind="edited",
                        file=path.name,
                        line=number,
                        message=f"{path.name} line {number} is not a valid audit entry: it was altered or inserted",
                    )
                )
            continue
        content_ok = entry_hash(obj) == entry.hash
        if not content_ok:
            problems.append(
                Problem(
                    kind="edited",
                    file=path.name,
                    line=number,
                    seq=entry.seq,
                    message=f"entry seq {entry.seq} in {path.name} line {number} was edited: "
                    "its hash does not match its content",
                )
            )
        records.append(_Record(path.name, number, entry.seq, entry.hash, entry.prev_hash, content_ok))


def _pair(a: _Record, b: _Record) -> str:
    if a.file == b.file:
        return f"seq {a.seq} (line {a.line}) and seq {b.seq} (line {b.line}) in {a.file}"
    return f"seq {a.seq} ({a.where()}) and seq {b.seq} ({b.where()})"


def _link(prev: _Record, r: _Record, anchor: _Record) -> str:
    if prev is not anchor:
        return _pair(prev, r)
    if anchor.seq == 0:
        return f"the start of the log and seq {r.seq} ({r.where()})"
    return f"seq {prev.seq} (the last entry of {prev.file}, line {prev.line}) and seq {r.seq} ({r.where()})"


def _check_chain(records: list[_Record], anchor: _Record, problems: list[Problem]) -> int | None:
    """Order and links of the window's entries; returns the first seq that cannot be trusted."""
    bad: list[int] = [p.seq for p in problems if p.seq is not None]
    unreadable = [(p.file or "", p.line or 0) for p in problems if p.kind == "edited" and p.seq is None]
    for a, b in pairwise(records):
        if b.seq < a.seq:
            problems.append(
                Problem(
                    kind="reordered",
                    file=b.file,
                    line=b.line,
                    seq=b.seq,
                    message=f"entries {_pair(a, b)} are out of order: seq {b.seq} was moved after seq {a.seq}",
                )
            )
            bad.append(b.seq)
    prev = anchor
    for r in sorted(records, key=lambda rec: rec.seq):
        both_ok = r.content_ok and prev.content_ok
        if r.seq == prev.seq and prev is not anchor:
            problems.append(
                Problem(
                    kind="edited",
                    file=r.file,
                    line=r.line,
                    seq=r.seq,
                    message=f"entry seq {r.seq} appears twice ({prev.where()} and {r.where()}): "
                    "a line was copied into the log",
                )
            )
            bad.append(r.seq)
            continue
        if r.seq == prev.seq + 1:
            if r.prev_hash != prev.hash and both_ok:
                problems.append(
                    Problem(
                        kind="edited",
                        file=r.file,
                        line=r.line,
                        seq=r.seq,
                        message=f"the chain breaks between {_link(prev, r, anchor)}: entry seq {r.seq} "
                        "does not link to the entry before it, so one of them was rewritten with a "
                        "recomputed hash",
                    )
                )
                bad.append(max(prev.seq, 1))
        elif r.seq > prev.seq + 1:
            single = r.seq == prev.seq + 2
            missing = f"entry seq {prev.seq + 1}" if single else f"entries seq {prev.seq + 1}-{r.seq - 1}"
            were = "was" if single else "were"
            start = ("", 0) if prev is anchor and prev.seq == 0 else (prev.file, prev.line)
            overwritten = sum(start < spot < (r.file, r.line) for spot in unreadable)
            if overwritten >= r.seq - prev.seq - 1:
                pass  # the missing entries are the unreadable lines in between, already reported as edited
            elif r.prev_hash != prev.hash:
                after = f"seq {prev.seq} ({prev.where()})"
                if prev is anchor and prev.seq == 0:
                    after = "the start of the log"
                problems.append(
                    Problem(
                        kind="deleted",
                        file=r.file,
                        line=r.line,
                        seq=prev.seq + 1,
                        message=f"{missing} {were} deleted: {after} is followed by seq {r.seq} ({r.where()})",
                    )
                )
            else:
                problems.append(
                    Problem(
                        kind="edited",
                        file=r.file,
                        line=r.line,
                        seq=r.seq,
                        message=f"entry seq {r.seq} in {r.where()} was renumbered: it links to "
                        f"seq {prev.seq} but {missing} {were} never there",
                    )
                )
            bad.append(prev.seq + 1)
        else:
            problems.append(
                Problem(
                    kind="reordered",
                    file=r.file,
                    line=r.line,
                    seq=r.seq,
                    message=f"entry seq {r.seq} in {r.where()} comes after seq {anchor.seq}, "
                    f"the last entry of {anchor.file}",
                )
            )
            bad.append(r.seq)
        prev = r
    return min(bad) if bad else None


_Signed = tuple[str, int, Checkpoint]  # (file it was read from, line, checkpoint)


def _valid_notes(
    text: str, source: str, public_key: Ed25519PublicKey | None, public_key_path: Path, problems: list[Problem]
) -> tuple[int, list[_Signed]]:
    """(notes read, notes that parse and verify); without a public key, every note that parses."""
    notes = parse_checkpoints(text, source)
    valid: list[_Signed] = []
    for note in notes:
        if note.checkpoint is None:
            problems.append(Problem(kind="bad_signature", file=source, line=note.line, message=note.error or ""))
        elif public_key is not None and not note.checkpoint.verify_signature(public_key):
            problems.append(
                Problem(
                    kind="bad_signature",
                    file=source,
                    line=note.line,
                    message=f"checkpoint at {source} line {note.line} (tree size "
                    f"{note.checkpoint.tree_size}) has a signature that does not verify with "
                    f"{public_key_path}",
                )
            )
        else:
            valid.append((source, note.line, note.checkpoint))
    return len(notes), valid


def _signed(source: str, line: int, cp: Checkpoint) -> str:
    whose = "the checkpoint" if source == CHECKPOINTS_FILE else "the witness's checkpoint"
    return f"{whose} at {source} line {line} (signed {cp.time or 'at an unknown time'})"


def _sizes(sizes: list[int]) -> str:
    shown = ", ".join(str(n) for n in sizes[:5])
    return shown + (f", … {sizes[-1]}" if len(sizes) > 5 else "")


def _check_witness(
    path: Path, local: list[_Signed], public_key: Ed25519PublicKey | None, public_key_path: Path,
    expected: bool, problems: list[Problem],
) -> tuple[int, list[_Signed]]:
    """Compare the witness's copy with checkpoints.log: every witnessed checkpoint must still be there,
    unchanged; returns (notes read, the witness's valid checkpoints)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        if expected:
            problems.append(
                Problem(
                    kind="witness_unavailable",
                    file=path.name,
                    message=f"the witness has no copy at {path}: nothing was witnessed from this host yet, or "
                    "the copy was removed. Run `operate-mcp audit checkpoint` with OPERATE_MCP_AUDIT_WITNESS_DIR "
                    "set to start one; from another host, pass the file: --witness DIR/<host>-checkpoints.log",
                )
            )
        return 0, []
    except OSError as exc:
        problems.append(
            Problem(
                kind="witness_unavailable",
                file=path.name,
                message=f"cannot read the witness copy {path} ({exc.strerror}); mount the witness directory "
                "or pass --witness with a readable path",
            )
        )
        return 0, []
    source = path.name if path.name != CHECKPOINTS_FILE else str(path)  # never mistaken for the local file
    count, witnessed = _valid_notes(text, source, public_key, public_key_path, problems)
    by_size: dict[int, list[_Signed]] = {}
    for signed in witnessed:
        by_size.setdefault(signed[2].tree_size, []).append(signed)
    for size, same in by_size.items():
        roots = {cp.root_hash: line for _, line, cp in same}
        if len(roots) > 1:
            (_, first), (_, second) = sorted(roots.items(), key=lambda r: r[1])[:2]
            problems.append(
                Problem(
                    kind="checkpoint_rewritten",
                    file=source,
                    line=second,
                    message=f"the witness {source} holds checkpoints with different roots for tree size {size} "
                    f"(lines {first} and {second}): one of them was signed over a rewritten log",
                )
            )
    kept = {(cp.tree_size, cp.root_hash, cp.time, cp.signature) for _, _, cp in local}
    local_by_size: dict[int, list[_Signed]] = {}
    for signed in local:
        local_by_size.setdefault(signed[2].tree_size, []).append(signed)
    missing: list[_Signed] = []
    reported: set[int] = set()
    for signed in witnessed:
        _, line, cp = signed
        if (cp.tree_size, cp.root_hash, cp.time, cp.signature) in kept:
            continue
        other = next((lc for lc in local_by_size.get(cp.tree_size, []) if lc[2].root_hash != cp.root_hash), None)
        if other is None:
            missing.append(signed)
            continue
        if cp.tree_size in reported:
            continue
        reported.add(cp.tree_size)
        _, local_line, local_cp = other
        problems.append(
            Problem(
                kind="checkpoint_rewritten",
                file=CHECKPOINTS_FILE,
                line=local_line,
                message=f"the checkpoint at {CHECKPOINTS_FILE} line {local_line} (tree size {cp.tree_size}, root "
                f"{local_cp.root_hash[:12]}…) differs from the witness's copy at {source} line {line} (root "
                f"{cp.root_hash[:12]}…): it was re-signed over a different log",
            )
        )
    if missing:
        newest = max(missing, key=lambda m: m[2].tree_size)[2]
        sizes = sorted({cp.tree_size for _, _, cp in missing})
        were = "is" if len(missing) == 1 else "are"
        problems.append(
            Problem(
                kind="checkpoint_missing",
                file=source,
                line=missing[0][1],
                message=f"{len(missing)} checkpoint{'s' if len(missing) != 1 else ''} the witness {source} holds "
                f"{were} missing from {CHECKPOINTS_FILE} (tree size {_sizes(sizes)}; the newest signed "
                f"{newest.time or 'at an unknown time'}): checkpoints were deleted, which hides a truncated "
                "or rewritten log",
            )
        )
    return count, witnessed


def _check_checkpoints(
    audit_dir: Path,
    public_key_path: Path,
    by_seq: Mapping[int, _Record],
    bounds: tuple[int, int],
    includes_end: bool,
    log_last: _Record | None,
    problems: list[Problem],
    *,
    key_present: str | None = None,
    witness: Path | None = None,
    matched: list[int] | None = None,
) -> tuple[int, int | None, int]:
    """Signatures, truncation, rewritten tails and the witness's copy; returns (notes read, last seq a
    checkpoint vouches for, witness notes read). `by_seq` holds the window's entries and `bounds` their
    lowest and highest seq; the tree sizes whose root matched are appended to `matched`. `key_present`
    names a signing or public key that exists: then checkpoints were signed, and their absence is a problem."""
    try:
        text = (audit_dir / CHECKPOINTS_FILE).read_text(errors="replace")
    except FileNotFoundError:
        text = None
    notes = parse_checkpoints(text or "")
    if not notes and key_present is not None:
        state = "is missing" if text is None else "holds no checkpoints"
        problems.append(
            Problem(
                kind="checkpoints_deleted",
                file=CHECKPOINTS_FILE,
                message=f"{CHECKPOINTS_FILE} {state} but the signing key {key_present} exists, so checkpoints "
                "were signed: the file was deleted or emptied, which hides a truncated log. Compare with the "
                "witness's copy (audit verify --witness DIR) and restore it from there",
            )
        )
    witness_text_exists = witness is not None and witness.exists()
    if not notes and not witness_text_exists:
        if witness is not None:
            _check_witness(witness, [], None, public_key_path, key_present is not None, problems)
        return 0, None, 0
    public_key = load_public_key(public_key_path)
    if public_key is None:
        holder = f"{CHECKPOINTS_FILE} holds {len(notes)} checkpoints" if notes else "the witness holds checkpoints"
        problems.append(
            Problem(
                kind="missing_checkpoint_key",
                file=CHECKPOINTS_FILE,
                message=f"{holder} but the public key {public_key_path} is missing, so their signatures cannot "
                "be checked; restore it or pass --public-key",
            )
        )
    _, valid = _valid_notes(text or "", CHECKPOINTS_FILE, public_key, public_key_path, problems)
    witness_count = 0
    if witness is not None:
        witness_count, witnessed = _check_witness(witness, valid, public_key, public_key_path, True, problems)
        valid = valid + witnessed  # checkpoints.log first: its notes are the ones named when both agree
    if not valid:
        return len(notes), None, witness_count

    top_source, top_line, top = max(valid, key=lambda v: v[2].tree_size)
    last_seq = log_last.seq if log_last else 0
    if includes_end and top.tree_size > last_seq:
        end = f"seq {last_seq} ({log_last.where()})" if log_last else "no entries"
        gone = f"seq {last_seq + 1} was"
        if top.tree_size > last_seq + 1:
            gone = f"seq {last_seq + 1}-{top.tree_size} were"
        problems.append(
            Problem(
                kind="truncated",
                file=log_last.file if log_last else None,
                line=log_last.line if log_last else None,
                seq=last_seq + 1,
                message=f"the log ends at {end} but {_signed(top_source, top_line, top)} covers {top.tree_size} "
                f"entries: {gone} removed from the end (truncated)",
            )
        )
    lo, hi = bounds
    if matched is None:
        matched = []
    mismatched: list[tuple[str, int, Checkpoint, _Record]] = []
    for source, line, cp in valid:
        record = by_seq.get(cp.tree_size)
        outside = not lo <= cp.tree_size <= hi
        if record is None and outside and cp is top and includes_end and 0 < cp.tree_size <= last_seq:
            found = find_entry(audit_dir, cp.tree_size)
            if found is not None:
                entry, path, number = found
                record = _Record(path.name, number, entry.seq, entry.hash, entry.prev_hash, True)
        if record is None or not record.content_ok:
            continue
        if record.hash == cp.root_hash:
            matched.append(cp.tree_size)
        else:
            mismatched.append((source, line, cp, record))
    if not mismatched:
        return len(notes), None, witness_count
    source, line, cp, record = min(mismatched, key=lambda m: m[2].tree_size)
    good = max((size for size in matched if size < cp.tree_size), default=None)
    since = f"at or before seq {cp.tree_size}"
    if good:
        since = f"after seq {good}, the last checkpoint that still matches"
    problems.append(
        Problem(
            kind="tail_rewritten",
            file=record.file,
            line=record.line,
            seq=record.seq,
            message=f"entry seq {record.seq} in {record.where()} does not match {_signed(source, line, cp)}, "
            f"whose root at tree size {cp.tree_size} is {cp.root_hash[:12]}…: the log was rewritten {since}",
        )
    )
    return len(notes), good or 0, witness_count


@dataclass
class _Scope:
    """What one verification looks at: the window's day files, the entry before them, the keys."""

    data_dir: Path
    audit_dir: Path
    all_files: list[tuple[dt.date, Path]]
    selected: list[tuple[dt.date, Path]]
    newest: tuple[dt.date, Path] | None
    includes_end: bool
    anchor: _Record
    key_path: Path
    key_present: str | None
    witness: Path | None
    window: tuple[dt.date | None, dt.date | None]

    def log_last(self, window_last: _Record | None) -> _Record | None:
        """The log's last entry when the window includes the end: the window's, or the newest file's."""
        newest = self.newest
        if self.includes_end and newest is not None and (not self.selected or self.selected[-1] != newest):
            for _, path in reversed(self.all_files):
                found = _last_entry(path)
                if found is not None:
                    return _Record(path.name, found[1], found[0].seq, found[0].hash, found[0].prev_hash, True)
        return window_last

    def report(self, **fields: object) -> VerifyReport:
        witness = self.witness
        return VerifyReport.model_validate(
            {
                "files": [path.name for _, path in self.selected],
                "window_from": self.window[0],
                "window_to": self.window[1],
                "witness": str(witness) if witness is not None else None,
                **fields,
            }
        )


def verify(
    data_dir: Path,
    *,
    date: dt.date | None = None,
    days: int | None = None,
    from_date: dt.date | None = None,
    to_date: dt.date | None = None,
    public_key_path: Path | None = None,
    today: dt.date | None = None,
    alert: bool = True,
    witness: Path | None = None,
) -> VerifyReport:
    """Verify the day files in the window (all by default) against their chain and the checkpoints.

    A window's first entry is checked against the last entry of the nearest earlier day file, so
    `--days 1` still notices a break at midnight. `witness` (a witness directory, or one host's copy
    in it) is compared with checkpoints.log: a checkpoint missing or changed there, or a log shorter
    than a witnessed checkpoint, is a problem. Failures are appended to alerts/audit-integrity.log.

    A log as `AuditLog.append` writes it is proven intact by hashing the stored bytes (see
    `_verify_fast`); anything else, and every log with a problem, goes through the entry-by-entry
    check, which parses each entry and names what is wrong and where.
    """
    window_from, window_to = resolve_window(date=date, days=days, from_date=from_date, to_date=to_date, today=today)
    audit_dir = data_dir / AUDIT_DIR
    all_files = day_files(audit_dir)
    selected = [
        (day, path)
        for day, path in all_files
        if (window_from is None or day >= window_from) and (window_to is None or day <= window_to)
    ]
    newest = all_files[-1] if all_files else None
    anchor = _Record("the start of the log", 0, 0, GENESIS_HASH, "", True)
    if selected:
        for _, earlier in reversed([f for f in all_files if f[0] < selected[0][0]]):
            found = _last_entry(earlier)
            if found is not None:
                entry, number = found
                anchor = _Record(earlier.name, number, entry.seq, entry.hash, entry.prev_hash, True)
                break
    signing_key = default_signing_key_path(data_dir)
    key_path = public_key_path or public_key_path_for(signing_key)
    scope = _Scope(
        data_dir=data_dir,
        audit_dir=audit_dir,
        all_files=all_files,
        selected=selected,
        newest=newest,
        includes_end=newest is None or window_to is None or newest[0] <= window_to,
        anchor=anchor,
        key_path=key_path,
        key_present=next((str(k) for k in (signing_key, key_path) if k.exists()), None),
        witness=witness_file(witness) if witness is not None else None,
        window=(window_from, window_to),
    )
    report = _verify_fast(scope) if _FAST_PATH else None
    if report is None:
        report = _verify_entries(scope)
    if report.problems and alert:
        write_alerts(data_dir, report.problems)
    return report


def _verify_entries(scope: _Scope) -> VerifyReport:
    """Entry by entry: parse, re-serialise and hash each one, then check order, links and checkpoints."""
    anchor = scope.anchor
    problems: list[Problem] = []
    records: list[_Record] = []
    torn: list[_Torn] = []
    for _, path in scope.selected:
        _read_day_file(path, scope.newest is not None and path == scope.newest[1], records, problems, torn)
    first_bad = _check_chain(records, anchor, problems)

    log_last = scope.log_last(max(records, key=lambda r: r.seq) if records else None)
    by_seq: dict[int, _Record] = {}
    for r in records:
        by_seq.setdefault(r.seq, r)
    bounds = (min(by_seq, default=0), max(by_seq, default=-1))
    checkpoints_checked, rewritten_after, witnessed = _check_checkpoints(
        scope.audit_dir, scope.key_path, by_seq, bounds, scope.includes_end, log_last, problems,
        key_present=scope.key_present, witness=scope.witness,
    )

    verified_up_to: int | None = None
    if records:
        verified_up_to = max(r.seq for r in records) if first_bad is None else first_bad - 1
    elif anchor.seq:
        verified_up_to = anchor.seq
    if rewritten_after is not None and verified_up_to is not None:
        verified_up_to = min(verified_up_to, rewritten_after)
    for t in torn:
        upto = "no complete entry precedes it"
        if verified_up_to:
            upto = f"the log verifies up to seq {verified_up_to}"
        problems.append(
            Problem(
                kind="torn_tail",
                file=t.file,
                line=t.line,
                message=f"the last line of {t.file} (line {t.line}, {t.length} bytes) {t.reason}: "
                f"a write was interrupted; {upto}. Run `operate-mcp audit repair` to set the bytes aside "
                "and record it",
            )
        )
    return scope.report(
        ok=not problems,
        entries_checked=len(records),
        problems=problems,
        checkpoints_checked=checkpoints_checked,
        first_seq=min((r.seq for r in records), default=None),
        last_seq=max((r.seq for r in records), default=None),
        verified_up_to_seq=verified_up_to,
        witness_checkpoints_checked=witnessed,
    )


# -- the fast path ----------------------------------------------------------------------------------
#
# `AuditLog.append` writes each entry as the canonical JSON of all its fields, and canonical JSON
# sorts keys, so a stored line is exactly the hashed bytes with the member `"hash":"<64 hex>",` added
# in front of `"kind":`. Members after `hash` (kind, prev_hash, record_id, seq, session_id, ts) are
# scalars, whose strings cannot hold an unescaped quote, so the last `"kind":` of a line is the
# top-level one. Cutting the 74 bytes before it and hashing the rest costs one SHA-256 per entry,
# without parsing, validating or re-serialising anything.
#
# Why that proves what the entry-by-entry check proves, for every entry a checkpoint covers: the
# newest checkpoint inside the window signs the hash of entry S. If the stored bytes of the line at
# S, minus its hash member, hash to that root, they are the bytes that were signed (SHA-256 is
# collision resistant), and since the member sits in front of the last `"kind":`, the whole line is
# the line that was written. Its `prev_hash` is then genuine, so the line before it must hash to
# that, and so on back to the first entry of the window, which must link to the entry before the
# window. Entries after S no checkpoint vouches for yet: they are parsed, re-serialised and hashed
# the old way (a handful, with checkpoints every 15 minutes). Anything unexpected (a line written
# differently, a broken link, a bad or missing checkpoint, a torn tail, no checkpoint in the window)
# hands the whole window to `_verify_entries`, which names the problem.

_FAST_PATH = True  # tests turn it off to compare both paths
_KIND = b'"kind":'
_HASH_MEMBER = b',"hash":"'  # + 64 hex + '",' = 75 bytes before the last '"kind":'
_PREV_MEMBER = b',"prev_hash":"'


@dataclass
class _FastFile:
    path: Path
    start: int  # index of its first entry in the window
    count: int
    digests: bytes  # SHA-256 of each entry, 32 bytes each, in line order


def _hash_day_file(path: Path, previous_hash: bytes) -> _FastFile | None:
    """Hash each line's stored bytes and check its hash member and its link to the line before;
    None when any line is not as `append` writes it."""
    raw = path.read_bytes()
    if not raw:
        return _FastFile(path, 0, 0, b"")
    if not raw.endswith(b"\n"):
        return None
    lines = raw.split(b"\n")
    lines.pop()
    sha256 = hashlib.sha256
    # The hot loops: a few C calls per line, everything checked in bulk afterwards.
    kinds = [line.rfind(_KIND) for line in lines]
    members = [line[k - 75 : k] for line, k in zip(lines, kinds, strict=True)]
    prevs = [line[(p := line.find(_PREV_MEMBER, k)) + 14 : p + 78] for line, k in zip(lines, kinds, strict=True)]
    digests = [sha256(line[: k - 74] + line[k:]).digest() for line, k in zip(lines, kinds, strict=True)]
    n = len(lines)
    stored = b"".join(members)
    if len(stored) != 75 * n:
        return None
    hexes = b"".join(digests).hex().encode()
    for column, expected in enumerate(_HASH_MEMBER):
        if stored[column::75].count(expected) != n:
            return None
    if stored[73::75].count(b'"'[0]) != n or stored[74::75].count(b","[0]) != n:
        return None
    for column in range(64):  # each stored hash is the hex of its line's digest
        if stored[9 + column :: 75] != hexes[column::64]:
            return None
    if b"".join(prevs) != previous_hash + hexes[:-64]:
        return None
    return _FastFile(path, 0, n, b"".join(digests))


class _FastRecords(Mapping[int, _Record]):
    """The window's entries by seq, made on demand from the hashed files (a year is millions of them)."""

    def __init__(self, files: list[_FastFile], first_seq: int, anchor: _Record) -> None:
        self.files = files
        self.first_seq = first_seq
        self.anchor = anchor
        self.count = sum(f.count for f in files)
        self.starts = [f.start for f in files]

    def digest(self, index: int) -> str:
        f = self.files[bisect.bisect_right(self.starts, index) - 1]
        at = (index - f.start) * 32
        return f.digests[at : at + 32].hex()

    def __getitem__(self, seq: int) -> _Record:
        index = seq - self.first_seq
        if not 0 <= index < self.count:
            raise KeyError(seq)
        f = self.files[bisect.bisect_right(self.starts, index) - 1]
        prev = self.digest(index - 1) if index else self.anchor.hash
        return _Record(f.path.name, index - f.start + 1, seq, self.digest(index), prev, True)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first_seq, self.first_seq + self.count))

    def __len__(self) -> int:
        return self.count


def _parsed_lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _verify_fast(scope: _Scope) -> VerifyReport | None:
    """The report for a window that is intact, proven from its stored bytes; None to check entry by entry."""
    if not scope.selected:
        return None
    files: list[_FastFile] = []
    previous = scope.anchor.hash.encode()
    start = 0
    for _, path in scope.selected:
        hashed = _hash_day_file(path, previous)
        if hashed is None:
            return None
        hashed.start = start
        start += hashed.count
        if hashed.count:
            previous = hashed.digests[-32:].hex().encode()
        files.append(hashed)
    if not start:
        return None
    first_seq = scope.anchor.seq + 1
    records = _FastRecords(files, first_seq, scope.anchor)
    last_seq = first_seq + records.count - 1
    problems: list[Problem] = []
    matched: list[int] = []
    checkpoints_checked, rewritten_after, witnessed = _check_checkpoints(
        scope.audit_dir, scope.key_path, records, (first_seq, last_seq), scope.includes_end,
        scope.log_last(records[last_seq]), problems, key_present=scope.key_present, witness=scope.witness,
        matched=matched,
    )
    vouched = max((size for size in matched if first_seq <= size <= last_seq), default=None)
    if problems or rewritten_after is not None or vouched is None:
        return None
    if not _checked_one_by_one(records, vouched, last_seq):
        return None
    return scope.report(
        ok=True,
        entries_checked=records.count,
        problems=[],
        checkpoints_checked=checkpoints_checked,
        first_seq=first_seq,
        last_seq=last_seq,
        verified_up_to_seq=last_seq,
        witness_checkpoints_checked=witnessed,
    )


def _checked_one_by_one(records: _FastRecords, vouched: int, last_seq: int) -> bool:
    """The entry a checkpoint vouches for carries its seq, and every entry after it passes the
    entry-by-entry check with the seq, links and hash the fast path assumed."""
    lines: dict[Path, list[bytes]] = {}
    for seq in range(vouched, last_seq + 1):
        record = records[seq]
        path = records.files[bisect.bisect_right(records.starts, seq - records.first_seq) - 1].path
        if path not in lines:
            lines[path] = _parsed_lines(path)
        raw = lines[path][record.line - 1]
        try:
            obj = json.loads(raw)
            entry = AuditEntry.model_validate(obj)
        except (ValueError, ValidationError):
            return False
        if seq == vouched:
            if entry.seq != seq:
                return False
            continue
        try:
            content_hash = entry_hash(obj)
        except ValueError:
            return False
        if (entry.seq, entry.hash, entry.prev_hash, content_hash) != (seq, record.hash, record.prev_hash, record.hash):
            return False
    return True


def write_alerts(data_dir: Path, problems: list[Problem], now: dt.datetime | None = None) -> Path:
    """One greppable line per problem: `<UTC time> <kind> <file>:<line> <message>`."""
    path = data_dir / ALERTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = "".join(
        f"{stamp} {p.kind} {p.file or '-'}:{'-' if p.line is None else p.line} {' '.join(p.message.split())}\n"
        for p in problems
    )
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)
    return path
