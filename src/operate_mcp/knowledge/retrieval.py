"""Hybrid ranking (vector similarity + trigger/keyword match) and the size-capped context block.

Vectors find paraphrases ("keep the service up while nodes are drained"); triggers make the words
a team actually uses ("pdb", "keda") count even when the sentence around them is unusual.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from operate_mcp.knowledge.models import Capability, KnowledgeItem, Pattern, Policy
from operate_mcp.model.proposal import KnowledgeRef
from operate_mcp.redact import redact_plain

VECTOR_WEIGHT = 0.6
KEYWORD_WEIGHT = 0.4
DEFAULT_MAX_CHARS = 6000
_STOP = frozenset({
    "a", "an", "the", "to", "for", "of", "on", "in", "and", "or", "with", "my", "our", "your", "this", "that",
    "it", "is", "be", "by", "at", "from", "as", "please", "can", "you", "we", "i", "me", "us", "make", "do",
    "so", "set", "get",
})
_TOKEN = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def tokens(text: str) -> list[str]:
    """Lower-cased, lightly stemmed words without stop words: 'Autoscaling pods' -> ['autoscal', 'pod']."""
    return [_stem(t) for t in _TOKEN.findall(text.lower()) if t not in _STOP]


def keyword_score(intent: str, triggers: Iterable[str], extra: Iterable[str] = ()) -> float:
    """1.0 when a trigger phrase appears whole (its words, in any order), partial credit for part of one."""
    words = set(tokens(intent))
    if not words:
        return 0.0
    best = 0.0
    full = 0
    for phrase in [*triggers, *extra]:
        wanted = set(tokens(phrase))
        if not wanted:
            continue
        hit = len(wanted & words) / len(wanted)
        if hit == 1.0:
            full += 1
            best = 1.0
        elif len(wanted) > 1:
            best = max(best, 0.5 * hit)
    return min(1.0, best + 0.05 * max(0, full - 1))


def hybrid(vector: float, keyword: float) -> float:
    return round(VECTOR_WEIGHT * max(0.0, vector) + KEYWORD_WEIGHT * keyword, 4)


@dataclass(frozen=True)
class Hit:
    """One ranked item with the parts of its score, and whether the cluster can use it."""

    item: KnowledgeItem
    score: float
    vector: float
    keyword: float
    available: bool | None = True  # None: unknown (the cluster was never scanned)

    def ref(self) -> KnowledgeRef:
        return KnowledgeRef(id=self.item.id, kind=self.item.kind, name=self.item.name, score=self.score)


def triggers_of(item: KnowledgeItem) -> list[str]:
    """The phrases keyword matching uses: a pattern's or policy's triggers, a capability's names."""
    if isinstance(item, Pattern | Policy):
        return list(item.triggers)
    return [item.name, item.id]


def rank(intent: str, candidates: Sequence[tuple[KnowledgeItem, float]]) -> list[Hit]:
    """Candidates (item, cosine) re-scored with keywords, best first; ties broken by id for stable output."""
    hits = []
    for item, cosine in candidates:
        kw = keyword_score(intent, triggers_of(item))
        hits.append(Hit(item=item, score=hybrid(cosine, kw), vector=round(cosine, 4), keyword=round(kw, 4)))
    return sorted(hits, key=lambda h: (-h.score, h.item.id))


# --------------------------------------------------------------------------- rendering


def _pattern_full(hit: Hit) -> str:
    p = hit.item
    assert isinstance(p, Pattern)
    r = p.recommendation
    lines = [f"### {p.name} [pattern {p.id}] (relevance {hit.score:.2f})"]
    if hit.available is None:
        lines.append(f"Requires capability `{p.requires_capability}`: the cluster was not scanned, check first.")
    lines += [p.description.strip(), f"Recommendation: {r.summary.strip()}"]
    for res in r.resources:
        lines.append(f"- {res.action} {res.kind}: {res.description.strip()}")
        if res.example.strip():
            lines.append("  example:\n" + "\n".join(f"    {ln}" for ln in res.example.strip().splitlines()))
    if r.steps:
        lines.append("Steps: " + " | ".join(s.strip() for s in r.steps))
    if r.verification:
        lines.append("Verify: " + " | ".join(v.strip() for v in r.verification))
    lines.append(f"Why: {p.rationale.strip()}")
    return "\n".join(lines)


def _pattern_compact(hit: Hit) -> str:
    p = hit.item
    assert isinstance(p, Pattern)
    res = "; ".join(f"{r.action} {r.kind}" for r in p.recommendation.resources)
    return (f"### {p.name} [pattern {p.id}] (relevance {hit.score:.2f})\n{p.recommendation.summary.strip()}"
            + (f"\nResources: {res}" if res else ""))


def _policy_line(hit: Hit) -> str:
    p = hit.item
    assert isinstance(p, Policy)
    return f"- [{p.id}] {p.name} (effect: {p.effect.value}): {p.description.strip()}"


def _capability_line(hit: Hit) -> str:
    c = hit.item
    assert isinstance(c, Capability)
    enables = f" Enables: {'; '.join(c.enables)}." if c.enables else ""
    return f"- {c.name} [capability {c.id}] ({c.category}): {c.description.strip()}{enables}"


def _unavailable_note(hit: Hit) -> str:
    p = hit.item
    assert isinstance(p, Pattern)
    return (f"(Not applicable here: {p.name} [pattern {p.id}] needs capability `{p.requires_capability}`, "
            "which the last scan did not find.)")


@dataclass
class RetrievedContext:
    """What retrieval found for one intent; implements the workflow's KnowledgeContext protocol."""

    intent: str
    patterns: list[Hit] = field(default_factory=list)
    policies: list[Hit] = field(default_factory=list)
    capabilities: list[Hit] = field(default_factory=list)
    unavailable: list[Hit] = field(default_factory=list)
    scanned: bool = True
    max_chars: int = DEFAULT_MAX_CHARS
    _rendered: tuple[str, list[KnowledgeRef]] | None = None

    def _build(self) -> tuple[str, list[KnowledgeRef]]:
        """Fill patterns, then policies, then capabilities, each within its share of the cap (unused share
        passes on); an item that does not fit is shortened, then left out, never cut in the middle."""
        if self._rendered is not None:
            return self._rendered
        carry = 0

        def section(header: str, entries: list[tuple[Hit, list[str]]], share: float) -> tuple[list[str], list[Hit]]:
            nonlocal carry
            budget = int(self.max_chars * share) + carry - len(header) - 2
            lines: list[str] = []
            used: list[Hit] = []
            for hit, variants in entries:
                for text in variants:
                    if len(text) + 2 <= budget:
                        lines.append(text)
                        used.append(hit)
                        budget -= len(text) + 2
                        break
            carry = max(0, budget)
            return ([header, *lines] if lines else []), used

        pattern_lines, pattern_hits = section(
            "## Patterns (how we do this here: follow them unless the intent says otherwise; "
            "list the ids you apply in patterns_applied)",
            [(h, [_pattern_full(h), _pattern_compact(h)]) for h in self.patterns]
            + [(h, [_unavailable_note(h)]) for h in self.unavailable],
            0.6,
        )
        policy_lines, policy_hits = section(
            "## Policies (enforced in code on every proposal: a violation blocks it or raises its risk tier)",
            [(h, [_policy_line(h)]) for h in self.policies],
            0.2,
        )
        caps_header = (
            "## Cluster capabilities (from the last `operate-mcp scan`)" if self.scanned
            else "## Cluster capabilities: unknown (never scanned: run `operate-mcp scan`); check kube_api_resources"
        )
        cap_lines, cap_hits = section(caps_header, [(h, [_capability_line(h)]) for h in self.capabilities], 0.2)
        if not self.scanned and not cap_lines:
            cap_lines = [caps_header]
        blocks = ["\n".join(policy_lines), "\n".join(cap_lines), "\n\n".join(pattern_lines)]
        text = "\n\n".join(b for b in blocks if b)
        refs = [h.ref() for h in (*policy_hits, *cap_hits, *pattern_hits) if h not in self.unavailable]
        self._rendered = (redact_plain(text), refs)
        return self._rendered

    def render(self) -> str:
        return self._build()[0]

    def refs(self) -> list[KnowledgeRef]:
        return list(self._build()[1])
