"""Patterns, policies and capabilities as pydantic models: the YAML files, the Qdrant payloads and the API agree.

A directory of YAML files in git is the source of truth; the store holds a searchable copy keyed by id.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from operate_mcp.errors import OperateError

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9:._-]{0,126}$")]
KindName = Literal["pattern", "policy", "capability"]
KINDS: tuple[KindName, ...] = ("pattern", "policy", "capability")
PLURAL: dict[KindName, str] = {"pattern": "patterns", "policy": "policies", "capability": "capabilities"}


class KnowledgeError(OperateError):
    """A knowledge item or the knowledge store is wrong in a way the message says how to fix."""


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def digest(self) -> str:
        """Content hash: re-imports and re-scans skip items whose content did not change."""
        data = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()


class ResourceTemplate(BaseModel):
    """One resource the recommendation creates or updates, with an optional example manifest."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    action: Literal["create", "update"] = "create"
    description: str
    example: str = ""


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    summary: str
    resources: list[ResourceTemplate] = Field(default_factory=list)
    steps: list[str] = Field(default_factory=list)
    verification: list[str] = Field(default_factory=list)


class Pattern(_Item):
    """How we do a thing here: retrieved for an intent and shown to the model before it plans."""

    kind: Literal["pattern"] = "pattern"
    id: Slug
    name: str
    description: str
    triggers: list[str] = Field(default_factory=list, description="phrases that select this pattern")
    tags: list[str] = Field(default_factory=list)
    requires_capability: str | None = Field(
        default=None, description="capability id (e.g. keda) the cluster must have for this pattern to apply"
    )
    recommendation: Recommendation
    rationale: str

    def search_text(self) -> str:
        return "\n".join([self.name, self.description, "; ".join(self.triggers), " ".join(self.tags)])


class PolicyEffect(StrEnum):
    BLOCK = "block"  # the proposal cannot be approved
    RAISE_TIER = "raise-tier"  # the proposal becomes critical: two distinct approvers
    WARN = "warn"  # shown, nothing else


class PolicyRule(BaseModel):
    """CEL over one change: `match` selects the changes it applies to, `expression` must hold for them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    match: str | None = Field(default=None, description="CEL; the rule applies only where this is true")
    expression: str = Field(description="CEL; true means the change complies")
    message: str = ""
    message_expression: str | None = Field(
        default=None, alias="messageExpression", description="CEL returning the violation message"
    )


class Policy(_Item):
    """What is not allowed, checked in code against every proposal; the model sees it too."""

    kind: Literal["policy"] = "policy"
    id: Slug
    name: str
    description: str
    rationale: str = ""
    effect: PolicyEffect = PolicyEffect.BLOCK
    triggers: list[str] = Field(default_factory=list)
    rules: list[PolicyRule] = Field(min_length=1)

    def search_text(self) -> str:
        return "\n".join([self.name, self.description, "; ".join(self.triggers)])


class Capability(_Item):
    """Something this cluster has (an operator, an add-on, an API), found by `scan`."""

    kind: Literal["capability"] = "capability"
    id: Slug
    name: str
    category: str = "other"
    description: str
    enables: list[str] = Field(default_factory=list)
    known: bool = True
    groups: list[str] = Field(default_factory=list, description="API groups seen")
    resources: list[str] = Field(default_factory=list, description="resources seen, as plural.group")

    def search_text(self) -> str:
        return "\n".join([self.name, self.category, self.description, "; ".join(self.enables)])


KnowledgeItem = Pattern | Policy | Capability
MODELS: dict[KindName, type[Pattern] | type[Policy] | type[Capability]] = {
    "pattern": Pattern,
    "policy": Policy,
    "capability": Capability,
}


def parse_item(data: Any, kind: KindName | None = None, *, source: str = "input") -> KnowledgeItem:
    """A pattern, policy or capability from a mapping; `kind` comes from the data when not given."""
    if not isinstance(data, dict):
        raise KnowledgeError(f"{source}: expected a mapping with id, name, ...; got {type(data).__name__}")
    chosen = kind or data.get("kind")
    if chosen not in MODELS:
        raise KnowledgeError(f"{source}: say what it is with `kind: pattern` or `kind: policy`")
    try:
        return MODELS[chosen].model_validate({**data, "kind": chosen})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise KnowledgeError(f"{source}: not a valid {chosen}: {problems}") from exc


def load_yaml_items(path: Path, kind: KindName | None = None) -> list[KnowledgeItem]:
    """Every item in a YAML file (several documents allowed) or in the *.yaml / *.yml files under a directory."""
    files = sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")]) if path.is_dir() else [path]
    if not files:
        raise KnowledgeError(f"{path}: no *.yaml files to import")
    items: list[KnowledgeItem] = []
    for file in files:
        try:
            docs = list(yaml.safe_load_all(file.read_text()))
        except OSError as exc:
            raise KnowledgeError(f"{file}: cannot read it ({exc.strerror})") from exc
        except yaml.YAMLError as exc:
            raise KnowledgeError(f"{file}: not valid YAML ({exc})") from exc
        for i, doc in enumerate(d for d in docs if d is not None):
            items.append(parse_item(doc, kind, source=f"{file}#{i + 1}"))
    return items


def dump_yaml(item: KnowledgeItem) -> str:
    return yaml.safe_dump(item.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=False)


def starter_dir() -> Path:
    """The shipped starter set (inside the package, so it is in the wheel)."""
    return Path(__file__).resolve().parent / "starter"
