"""Learned duration baselines: how long a kind of operation, and each of its steps, usually takes.

Per category (`update`, `scale`, ...) and per (category, step) — a step named by verb and kind
(`rollout status deployment`, as records/category.py names steps for metrics) — we keep an EWMA of
the duration and a bounded window of recent samples. A run is judged against them with a robust
z-score on the median absolute deviation, which one outlier in the window cannot drag the way it
drags a mean and a standard deviation. Nothing is judged before `MIN_SAMPLES` samples: a new
operation pages nobody. Only runs that went through teach the baseline (a timed-out run is not how
long the operation takes), and a run is judged before it is learned, so it is never compared with itself.
Baselines live in the records database (records/anomaly_store.py), so they survive restarts.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from operate_mcp.records.anomaly_store import AnomalyStore, BaselineRow
from operate_mcp.records.category import step_kind
from operate_mcp.records.models import ExecutionRecord, RunStatus

MIN_SAMPLES = 10
WINDOW = 50  # recent samples kept per baseline: bounded memory and storage
ALPHA = 0.2  # EWMA weight of the newest sample
MAD_SCALE = 0.6745  # makes the MAD-based z comparable with a normal z-score
MAD_FLOOR_FRACTION = 0.05  # identical samples give MAD 0: never divide by less than 5 % of the median ...
MAD_FLOOR_SECONDS = 0.05  # ... or 50 ms
LEARNED_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.ROLLED_BACK})


@dataclass(frozen=True)
class Judgement:
    """One duration against its baseline; `known` is false until the baseline has MIN_SAMPLES samples."""

    category: str
    step: str  # "" for the whole run
    value: float
    samples: int
    known: bool
    ewma: float
    median: float
    mad: float
    z: float  # robust z-score: MAD_SCALE * (value - median) / max(MAD, floor); 0 when not known
    ratio: float  # value / ewma; 0 when not known

    def view(self) -> dict[str, Any]:
        """The rules' view (CEL): doubles for every measure, so `baseline.ratio > 2.0` never mixes int and double."""
        return {
            "step": self.step, "duration": self.value, "samples": self.samples, "known": self.known,
            "ewma": self.ewma, "median": self.median, "mad": self.mad, "z": self.z, "ratio": self.ratio,
        }


@dataclass(frozen=True)
class RunJudgement:
    """A run's whole duration and each step's, each against its own baseline."""

    total: Judgement
    steps: tuple[Judgement, ...]
    min_samples: int

    def view(self) -> dict[str, Any]:
        return {**self.total.view(), "min_samples": self.min_samples, "steps": [s.view() for s in self.steps]}


def robust_z(value: float, samples: Sequence[float]) -> tuple[float, float, float]:
    """(median, MAD, z) of `value` against `samples`; the MAD is floored so identical samples still judge."""
    median = statistics.median(samples)
    mad = statistics.median(abs(s - median) for s in samples)
    floor = max(MAD_FLOOR_FRACTION * abs(median), MAD_FLOOR_SECONDS)
    return median, mad, MAD_SCALE * (value - median) / max(mad, floor)


def step_durations(record: ExecutionRecord, *, ok_only: bool = False) -> dict[str, float]:
    """Seconds per step of a run; two commands of the same step (two `rollout status`) add up."""
    steps: dict[str, float] = {}
    for command in record.commands:
        if ok_only and not command.ok:
            continue
        key = step_kind(command.argv)
        steps[key] = steps.get(key, 0.0) + max(0.0, command.duration_seconds)
    return steps


class Baselines:
    """Judge a run against what was learned, then learn from it; state is in the AnomalyStore's table."""

    def __init__(
        self, store: AnomalyStore, *, min_samples: int = MIN_SAMPLES, window: int = WINDOW, alpha: float = ALPHA
    ) -> None:
        if min_samples < 2 or window < min_samples or not 0.0 < alpha <= 1.0:
            raise ValueError(
                f"baselines need min_samples >= 2, window >= min_samples and 0 < alpha <= 1 "
                f"(got {min_samples}, {window}, {alpha})"
            )
        self.store = store
        self.min_samples = min_samples
        self.window = window
        self.alpha = alpha

    def judge(self, category: str, step: str, value: float) -> Judgement:
        row = self.store.baseline(category, step)
        samples = row.recent if row is not None else []
        known = row is not None and row.count >= self.min_samples and len(samples) >= self.min_samples
        if row is None or not known:
            return Judgement(category, step, value, row.count if row else 0, False, row.ewma if row else 0.0,
                             statistics.median(samples) if samples else 0.0, 0.0, 0.0, 0.0)
        median, mad, z = robust_z(value, samples)
        ratio = value / max(row.ewma, MAD_FLOOR_SECONDS)
        return Judgement(category, step, value, row.count, True, row.ewma, median, mad, z, ratio)

    def judge_record(self, record: ExecutionRecord) -> RunJudgement:
        total = self.judge(record.category, "", record.duration_seconds)
        steps = tuple(self.judge(record.category, step, v) for step, v in step_durations(record).items())
        return RunJudgement(total, steps, self.min_samples)

    def learn_record(self, record: ExecutionRecord, *, now: datetime | None = None) -> bool:
        """Add the run's durations to its baselines; False (nothing learned) for runs that did not go through,
        and for a run already in the window (detection run again on demand)."""
        if record.status not in LEARNED_STATUSES or record.duration_seconds <= 0:
            return False
        at = now or datetime.now(UTC)
        values = {"": record.duration_seconds, **step_durations(record, ok_only=True)}
        rows: list[BaselineRow] = []
        for step, value in values.items():
            row = self.store.baseline(record.category, step) or BaselineRow(category=record.category, step=step,
                                                                           updated_at=at)
            if record.id in row.recent_runs:
                return False
            rows.append(self._learn(row, value, record.id, at))
        self.store.save_baselines(rows)
        return True

    def _learn(self, row: BaselineRow, value: float, run_id: str, at: datetime) -> BaselineRow:
        ewma = value if row.count == 0 else self.alpha * value + (1 - self.alpha) * row.ewma
        return row.model_copy(update={
            "count": row.count + 1,
            "ewma": ewma,
            "recent": [*row.recent, value][-self.window :],
            "recent_runs": [*row.recent_runs, run_id][-self.window :],
            "updated_at": at,
        })
