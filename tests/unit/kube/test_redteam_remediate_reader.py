"""Red team: what the reader hands the analyzers (and so `diagnose`, `remediate` and the model) carries no
credential the cluster's free text held: a private key in a crashed container's log, a token in a
termination message or an event. Objects recorded on the test bed (tests/fixtures/analyzers/), with the
credential written where an application or a component would put it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from operate_mcp.analyzers.logs import decisive_lines
from operate_mcp.analyzers.registry import ALL, run_analyzers
from operate_mcp.kube.reader import _mask_messages, log_lines

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "analyzers"
KEY_BODY = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
]
KEY = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *KEY_BODY, "-----END RSA PRIVATE KEY-----"])
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def test_a_private_key_a_crashing_app_logged_never_reaches_the_evidence():
    log = f"starting\nERROR could not load the signing key, got:\n{KEY}\npanic: bad key\n"
    cited = decisive_lines(log_lines(log, tail=50))
    assert not any(part in line for line in cited for part in KEY_BODY), cited
    assert "panic: bad key" in cited


def test_a_log_tail_that_starts_inside_a_private_key_masks_what_precedes_its_end():
    tail = "\n".join([*KEY_BODY, "-----END RSA PRIVATE KEY-----", "ERROR the key was rejected"])
    lines = log_lines(tail, tail=50)
    assert not any(part in line for line in lines for part in KEY_BODY), lines
    assert lines[-1] == "ERROR the key was rejected"


def test_a_certificate_in_a_log_stays_readable():
    cert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----"
    assert "MIIBszCCAVmgAwIBAgIUQ" in log_lines(f"ERROR bad peer certificate\n{cert}", tail=50)


def _objects(name: str) -> dict[str, list[dict[str, Any]]]:
    objects: dict[str, list[dict[str, Any]]] = json.loads((FIXTURES / name).read_text())["objects"]
    return copy.deepcopy(objects)


def _read_as_the_reader_does(objects: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    for items in objects.values():
        for item in items:
            item.setdefault("kind", "Event")  # the reader sets each list item's kind; fixtures keep theirs
            _mask_messages(item)
    return objects


def _everything_cited(objects: dict[str, list[dict[str, Any]]]) -> str:
    findings = run_analyzers([a for a in ALL if a.resource in objects], objects)
    return json.dumps([f.model_dump() for f in findings])


def test_a_token_in_a_termination_message_is_masked_before_the_analyzers_cite_it():
    objects = _objects("workload-job-failed.json")
    written = 0
    for pod in objects["pods"]:
        for cs in pod.get("status", {}).get("containerStatuses") or ():
            for state in (cs.get("state") or {}, cs.get("lastState") or {}):
                if "terminated" in state:
                    state["terminated"]["message"] = f"deploy failed: git clone https://x:{TOKEN}@github.com/o/r"
                    written += 1
    assert written
    assert TOKEN in _everything_cited(copy.deepcopy(objects))  # the analyzers cite termination messages ...
    assert TOKEN not in _everything_cited(_read_as_the_reader_does(objects))  # ... as the reader masked them


def test_a_password_in_an_event_message_is_masked_before_the_analyzers_cite_it():
    objects = _objects("imagepull.json")
    events = [e for e in objects["events"] if e.get("reason") == "Failed"]
    assert events
    for e in events:
        e["message"] = f"{e['message']} (tried DATABASE_URL=postgres://app:hunter2@db:5432/app)"
    assert "hunter2" in _everything_cited(copy.deepcopy(objects))
    assert "hunter2" not in _everything_cited(_read_as_the_reader_does(objects))


def test_a_log_cut_at_its_byte_limit_loses_its_partial_last_line():
    """A caller picks limit_bytes so the cut falls inside a credential, before the part the redactor
    needs to recognise it (the '@host' of a URL): the partial line is dropped, never shown."""
    from operate_mcp.kube.reader import whole_lines

    log = b"starting\nconnecting to postgres://app:hunter2@db:5432/shop\n"
    cut = log[: log.index(b"@")]
    assert whole_lines(cut, len(cut)) == b"starting\n"
    assert whole_lines(log, len(log)) == log  # ends with a newline: nothing cut
    assert whole_lines(cut, len(cut) + 10) == cut  # shorter than the limit: the log's own end
    assert whole_lines(b"one line without end", 20) == b""
