"""Untrusted text made inert: what the cluster says reaches the model as data, never as markup or control.

Tool outputs (kube/tools.py) and analyzer findings (workflows/remediate.py) are shown inside
`<cluster-data trust="untrusted">` blocks. A log line, an event or an annotation is whoever wrote it;
it must not end its block in any spelling a reader might take for a closing tag, nor carry raw
terminal controls. Both places use `inert`, so one rule decides what can close a block.
"""

from __future__ import annotations

import re

__all__ = ["inert"]

# `<` and `/` in every form NFKC folds to them (full-width, small), with any run of space, control or
# invisible formatting characters between them: `</X`, `< /X`, `<\n/X`, `<\u200b/X`, `\uff1c\uff0fX`.
_LESS = "<\ufe64\uff1c"
_SLASH = "/\uff0f"
_BETWEEN = r"\s\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
_CLOSING = re.compile(f"([{_LESS}][{_BETWEEN}]*)([{_SLASH}])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 but tab and newline, and DEL


def inert(text: str) -> str:
    """`text` with every closing tag broken (`</` becomes `<\\/`, whatever sits between them) and C0/C1
    control characters but tab and newline shown as escapes (`\\x1b`). Anything else is kept as it is,
    so JSON, YAML and tables read the same; applying it twice changes nothing more."""
    broken = _CLOSING.sub(lambda m: f"{m[1]}\\{m[2]}", text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", broken)
