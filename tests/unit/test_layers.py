"""The floors of the house (docs/architecture.md), enforced: an import only goes down.

    model, errors, config, fileio, identity, prompts, redact          ground floor
    kube, agent, governance, knowledge, records, audit, analyzers,
    approvers, observe                                               first floor
    workflows                                                        second floor
    server, cli (and every package's cli.py)                         the faces

Within the first floor a few walls stand as well: the agent loop never imports kube (toolsets are
handed in), analyzers never import anything that does I/O, governance holds pure rules. Imports of the
project's own modules sit at the top of a module; only lazy loads of heavy optional dependencies may sit
in a function, and they say why in a comment.

`test_the_checker_catches_an_upward_import` shows the checker failing on the kind of import the code had
before (governance importing workflows for the shared nouns).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "operate_mcp"

GROUND = {
    "model", "errors", "config", "fileio", "identity", "prompts", "redact", "manifest_stream", "untrusted", "tracing",
    "__init__",
}
FIRST = {"kube", "agent", "governance", "knowledge", "records", "audit", "analyzers", "approvers", "observe"}
SECOND = {"workflows"}
FACES = {"server", "cli", "__main__"}
FLOORS = {**dict.fromkeys(GROUND, 0), **dict.fromkeys(FIRST, 1), **dict.fromkeys(SECOND, 2), **dict.fromkeys(FACES, 3)}
FLOOR_NAMES = ["ground (model and helpers)", "first (kube, agent, ...)", "second (workflows)", "faces (server, cli)"]

# Walls inside a floor: (importer package, imported package) pairs that may not meet.
WALLS = {
    ("agent", "kube"): "the loop sees toolsets only through the Toolset protocol; workflows hand them in",
    ("model", "kube"): "the nouns import nothing of the project but errors",
    ("records", "observe"): "the store keeps what observation found; observation reads the store, not the reverse",
}
# Analyzers are pure: objects in, findings out.
ANALYZERS_MAY_IMPORT = {"model", "errors"}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def room(module: str) -> str:
    """The package (or top-level module) a dotted module name lives in, under operate_mcp."""
    parts = module.split(".")
    if parts[0] != "operate_mcp" or len(parts) == 1:
        return "__init__"
    if parts[-1] == "cli" and len(parts) > 2:
        return "cli"  # records/cli.py and friends are faces, whatever package holds them
    return parts[1]


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> list[tuple[int, str, bool]]:
    """(line, imported module, at top level) for every import of the project's own modules."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    found: list[tuple[int, str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.rsplit(".", node.level)[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            targets = [target]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            if t == "operate_mcp" or t.startswith("operate_mcp."):
                found.append((node.lineno, t, id(node) in top or _under_type_checking(tree, node)))
    return found


def _under_type_checking(tree: ast.Module, node: ast.AST) -> bool:
    return any(
        isinstance(block, ast.If)
        and "TYPE_CHECKING" in ast.unparse(block.test)
        and any(n is node for n in ast.walk(block))
        for block in tree.body
    )


def says_lazy(lines: list[str], line: int) -> bool:
    """A comment with 'lazy' above the import, within its block of imports (up to the enclosing def)."""
    for text in reversed(lines[max(0, line - 16) : line]):
        stripped = text.strip()
        if stripped.startswith(("def ", "async def ", "class ")):
            return False
        if stripped.startswith("#") and "lazy" in stripped.lower():
            return True
    return False


def check(root: Path) -> list[Violation]:
    violations: list[Violation] = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        here = room(name)
        lines = path.read_text().splitlines()
        for line, target, at_top in imports_of(path, name):
            there = room(target)
            if here not in FLOORS or there not in FLOORS:
                violations.append(Violation(name, line, target, f"{here or there} is on no floor: add it to the map"))
                continue
            if FLOORS[there] > FLOORS[here]:
                violations.append(
                    Violation(
                        name, line, target, f"{FLOOR_NAMES[FLOORS[here]]} may not import {FLOOR_NAMES[FLOORS[there]]}"
                    )
                )
            elif (here, there) in WALLS:
                violations.append(Violation(name, line, target, WALLS[(here, there)]))
            elif here == "analyzers" and there not in ANALYZERS_MAY_IMPORT and there != "analyzers":
                violations.append(Violation(name, line, target, "analyzers are pure: objects in, findings out"))
            if not at_top and not says_lazy(lines, line):
                violations.append(
                    Violation(
                        name, line, target, "an import inside a function: move it to the top, or say why it is lazy"
                    )
                )
    return violations


def test_every_import_goes_down_a_floor():
    violations = check(SRC)
    assert not violations, "\n".join(map(str, violations))


def test_every_package_is_on_a_floor():
    rooms = {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("__")}
    rooms |= {p.stem for p in SRC.glob("*.py")}
    assert rooms <= set(FLOORS), f"not on any floor: {sorted(rooms - set(FLOORS))}"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "operate_mcp"
    for pkg in ("model", "governance", "workflows", "agent", "kube", "analyzers"):
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "model" / "proposal.py").write_text("class Proposal: ...\n")
    (root / "workflows" / "operate.py").write_text("from operate_mcp.model.proposal import Proposal\n")
    return root


def test_the_checker_accepts_a_downward_import(tree: Path):
    assert check(tree) == []


def test_the_checker_catches_an_upward_import(tree: Path):
    """What the code had before issue #10: a rule importing the shared nouns from the use cases."""
    (tree / "governance" / "risk.py").write_text("from operate_mcp.workflows.operate import Proposal\n")
    [violation] = check(tree)
    assert violation.module == "operate_mcp.governance.risk" and "may not import second" in violation.why


def test_the_checker_catches_the_loop_importing_kube(tree: Path):
    (tree / "kube" / "tools.py").write_text("class ToolBox: ...\n")
    (tree / "agent" / "loop.py").write_text("from operate_mcp.kube.tools import ToolBox\n")
    [violation] = check(tree)
    assert "Toolset protocol" in violation.why


def test_the_checker_catches_an_analyzer_doing_io(tree: Path):
    (tree / "kube" / "runner.py").write_text("class Kubectl: ...\n")
    (tree / "analyzers" / "pods.py").write_text("from operate_mcp.kube.runner import Kubectl\n")
    [violation] = check(tree)
    assert "pure" in violation.why


def test_the_checker_catches_an_import_hidden_in_a_function(tree: Path):
    (tree / "workflows" / "execute.py").write_text("def run():\n    from operate_mcp.model.proposal import Proposal\n")
    [violation] = check(tree)
    assert "inside a function" in violation.why


def test_a_lazy_import_that_says_so_is_allowed(tree: Path):
    (tree / "workflows" / "execute.py").write_text(
        "def run():\n    # lazy: pulls in qdrant, which tools/list must not wait for\n"
        "    from operate_mcp.model.proposal import Proposal\n"
    )
    assert check(tree) == []


def test_the_map_names_every_room():
    """docs/architecture.md is the map of the house: a package missing from it is a room nobody can find."""
    text = (SRC.parents[1] / "docs" / "architecture.md").read_text()
    rooms = {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("__")}
    rooms |= {p.stem for p in SRC.glob("*.py") if not p.stem.startswith("__")}
    missing = sorted(r for r in rooms if f"`{r}/" not in text and f"`{r}.py`" not in text and f" {r} " not in text)
    assert not missing, f"docs/architecture.md does not mention: {missing}"
