"""Untrusted text made inert: what the cluster says reaches the model as data, never as markup or control.

Tool outputs (kube/tools.py) and analyzer findings (workflows/remediate.py) are shown inside
`<cluster-data trust="untrusted">` blocks. A log line, an event or an annotation is whoever wrote it;
it must not end its block in any spelling a reader might take for a closing tag, nor begin a block of
its own (`<cluster-data trust="trusted">`), nor carry raw terminal controls. Every place uses `inert`,
so one rule decides what can open or close a block.

Of the opening tags only `cluster-data` is broken. Nothing inside a block can end it, so any other tag
(`<system>`, `<user>`) is shown visibly nested in untrusted data; a nested `cluster-data` is the one that
could claim another trust. Breaking every tag would change what the model reads to diagnose: the log
fixtures (tests/fixtures/logs, 223 lines) hold ten openings, all ordinary (Python's `<module>` and
`<genexpr>`, Node's `<anonymous>`, `<resource>`), and kubectl prints `<none>`; ingress error pages are HTML.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["inert"]

# What a reader may not see or may fold away between `<` and `/` or the tag's name: every whitespace,
# control (C0, C1), format (Cf: zero-width, bidi, tag characters) and other default-ignorable character
# (variation selectors, Hangul fillers). tests/unit/test_untrusted_opening.py checks the list is complete.
_BETWEEN = (
    r"\s\x00-\x20\x7f-\xa0\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u1680"
    r"\u17b4\u17b5\u180b-\u180f\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0"
    r"\ufff0-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    r"\U000e0000-\U000e0fff"
)
# `<` and `/` in every form NFKC folds to them (full-width, small) and their close look-alikes: angle
# quotation marks, brackets and ornaments, an arrowhead, a syllabic, `<` with a combining slash; fraction,
# division and big slashes, a box diagonal. `</X`, `< /X`, `<\u200b/X`, `<\u0301/X`, `\uff1c\uff0fX` all close.
_LESS = "<\ufe64\uff1c\u226e\u2039\u02c2\u1438\u276e\u276c\u2770\u27e8\u29fc\u3008\u2329"
_SLASH = "/\uff0f\u2044\u2215\u29f8\u2571\u141f"
# A `<` and its invisible run; combining marks after it are skipped in `_break_closings` (a reader drops
# accents, and `<` with U+0338 is `\u226e` once composed).
_ANGLE = re.compile(f"[{_LESS}][{_BETWEEN}]*+")
# A candidate opening: `<` and its invisible run, before a `c` or anything non-ASCII (a folded or look-alike c).
_OPENING = re.compile(f"([{_LESS}][{_BETWEEN}]*+)(?=[cC\\u0080-\\U0010ffff])")
_INVISIBLE = re.compile(f"[{_BETWEEN}]")
# The name, letter by letter, as NFKD and casefold leave it (accents dropped), each with its look-alikes
# (Cyrillic, Greek, small capitals, Lisu and Cherokee capitals, `1` and `I` for `l`). Separators (any dash,
# `_`, `.`, `:`, a middle dot, a minus sign) and invisible characters are skipped.
_NAME = (
    "c\u0441\u03f2\u1d04\ua4da\u13df",
    "l1|i\u04cf\u01c0\u0456\u03b9\u029f\ua4e1\ua4f2\u13de",
    "u\u03c5\u057d\u1d1c\ua4f4",
    "s\u0455\ua731\ua4e2\u13da",
    "t\u0442\u03c4\u1d1b\ua4d4\u13a2",
    "e\u0435\u1d07\ua4f0\u13ac",
    "r\u0433\u0280\ua4e3\u13a1",
    "d\u0501\u1d05\ua4d3\u13a0",
    "a\u0430\u03b1\u0251\u1d00\ua4ee\u13aa",
    "t\u0442\u03c4\u1d1b\ua4d4\u13a2",
    "a\u0430\u03b1\u0251\u1d00\ua4ee\u13aa",
)
_SEPARATORS = "-_.:\u00b7\u2027\u30fb\u2212\u2043\u02d7"  # and any dash (Pd) or connector (Pc)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 but tab and newline, and DEL


def _names_cluster_data(text: str, start: int) -> bool:
    """Whether `text` from `start` spells `cluster-data` to a lenient reader (see `_NAME`)."""
    want = iter(_NAME)
    expected = next(want)
    for i in range(start, len(text)):
        ch = text[i]
        if ch.isascii():  # the common case, kept cheap: a log may hold many `<c`
            if ch <= " " or ch in "-_.:\x7f":
                continue
            folded = ch.lower()
        elif _INVISIBLE.match(ch) or unicodedata.category(ch) in ("Pd", "Pc"):
            continue
        else:
            folded = unicodedata.normalize("NFKD", ch).casefold()
        for letter in folded:
            if letter in _SEPARATORS or unicodedata.category(letter)[0] == "M":  # and accents
                continue
            if letter not in expected:
                return False
            expected = next(want, "")
            if not expected:
                return True
    return False


def _break_closings(text: str) -> str:
    """`</` becomes `<\\/`, whatever invisible characters or combining marks sit between them."""
    pieces: list[str] = []
    pos = 0
    for match in _ANGLE.finditer(text):
        i = match.end()
        while i < len(text) and (
            _INVISIBLE.match(text[i]) or (not text[i].isascii() and unicodedata.category(text[i])[0] == "M")
        ):
            i += 1
        if i < len(text) and text[i] in _SLASH:
            pieces += [text[pos:i], "\\"]
            pos = i
    return "".join(pieces) + text[pos:] if pieces else text


def _break_opening(match: re.Match[str]) -> str:
    return f"{match[1]}\\" if _names_cluster_data(match.string, match.end()) else match[0]


def inert(text: str) -> str:
    """`text` with every closing tag broken (`</` becomes `<\\/`, whatever sits between them), every opening
    `cluster-data` tag broken the same way (`<cluster-data` becomes `<\\cluster-data`), and C0/C1 control
    characters but tab and newline shown as escapes (`\\x1b`). Anything else is kept as it is, so JSON,
    YAML, tables and other tags read the same; applying it twice changes nothing more."""
    broken = _OPENING.sub(_break_opening, _break_closings(text))
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", broken)
