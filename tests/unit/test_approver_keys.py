"""Approver keys: who an approval names comes from the key that signed it and the owner of its
public key file, never from environment variables; a signature covers exactly one approval."""

from __future__ import annotations

import base64
import json
import os
import pwd
import stat
import subprocess
import sys

import pytest

from operate_mcp.approvers import (
    SignatureError,
    approval_payload,
    init_key,
    key_id_of,
    load_registry,
    sign_approval,
    verify_approval,
)
from operate_mcp.errors import OperateError
from operate_mcp.identity import os_user, user_name
from support.approvers import ALICE, BOB, PASSPHRASE, enrol
from support.terminal import run_in_terminal

SESSION, VERSION, DIGEST, TIER = "opr-20260101-abcdef", 2, "ab" * 32, "critical"


@pytest.fixture
def approvers_dir(tmp_path):
    return tmp_path / "config" / "approvers"


def signed(key_path, payload=None):
    return sign_approval(key_path, PASSPHRASE, payload or approval_payload(SESSION, VERSION, DIGEST, TIER))


def a_named_user() -> pwd.struct_passwd:
    return next(p for p in pwd.getpwall() if p.pw_uid != 0)


# --- identity ------------------------------------------------------------------------------------------


def test_os_user_ignores_user_and_logname(monkeypatch):
    for var in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "alice")
    assert os_user() == pwd.getpwuid(os.getuid()).pw_name != "alice"


def test_a_uid_without_an_account_is_named_by_its_number():
    unused = max(p.pw_uid for p in pwd.getpwall() if p.pw_uid < 60000) + 1
    assert user_name(unused) == f"uid:{unused}"


# --- the registry -------------------------------------------------------------------------------------


def test_registry_names_the_approver_by_the_file_owner_not_the_file_name(approvers_dir):
    named = a_named_user()
    enrol(approvers_dir, "alice", named.pw_uid)  # the file says alice; its owner is someone else
    enrol(approvers_dir, "bob", BOB)
    registry = load_registry(approvers_dir)
    assert sorted(k.identity for k in registry.values()) == sorted([named.pw_name, user_name(BOB)])
    assert {k.owner_uid for k in registry.values()} == {named.pw_uid, BOB}


def test_root_owned_key_is_named_by_its_file(approvers_dir):
    enrol(approvers_dir, "dana", 0)  # an administrator enrolled dana
    [key] = load_registry(approvers_dir).values()
    assert key.identity == "dana" and key.owner_uid == 0


def test_root_owned_key_in_a_directory_another_user_owns_is_ignored(approvers_dir):
    enrol(approvers_dir, "dana", 0)
    os.chown(approvers_dir, ALICE, ALICE)  # alice could rename dana.pub to anyone.pub
    problems: list[str] = []
    assert load_registry(approvers_dir, problems) == {}
    assert "dana.pub: ignored: owned by root" in problems[0] and "could rename it" in problems[0]


def test_group_writable_key_file_is_ignored(approvers_dir):
    enrol(approvers_dir, "alice", ALICE)
    enrol(approvers_dir, "bob", BOB)
    os.chmod(approvers_dir / "bob.pub", 0o664)
    problems: list[str] = []
    registry = load_registry(approvers_dir, problems)
    assert [k.identity for k in registry.values()] == [user_name(ALICE)]
    assert len(problems) == 1 and "bob.pub: ignored: writable by group or others (mode 664)" in problems[0]


def test_keys_in_a_directory_others_can_write_are_all_ignored(approvers_dir):
    enrol(approvers_dir, "alice", ALICE)
    os.chmod(approvers_dir, 0o777)
    problems: list[str] = []
    assert load_registry(approvers_dir, problems) == {}
    assert "writable by group or others" in problems[0] and "chmod 755" in problems[0]


def test_symlinked_and_malformed_key_files_are_ignored_with_why(approvers_dir, tmp_path):
    alice = enrol(approvers_dir, "alice", ALICE)
    (approvers_dir / "link.pub").symlink_to(approvers_dir / "alice.pub")
    (approvers_dir / "junk.pub").write_text("ssh-rsa AAAA\n")
    problems: list[str] = []
    registry = load_registry(approvers_dir, problems)
    assert [k.identity for k in registry.values()] == [user_name(ALICE)]
    assert any("link.pub: ignored: a symbolic link" in p for p in problems)
    assert any("junk.pub: ignored: expected one line `ed25519 <base64 public key>`" in p for p in problems)
    assert signed(alice)[0] in registry


def test_one_key_enrolled_for_two_people_names_nobody(approvers_dir):
    enrol(approvers_dir, "alice", ALICE)
    copy = approvers_dir / "bob.pub"
    copy.write_text((approvers_dir / "alice.pub").read_text())
    os.chmod(copy, 0o644)
    os.chown(copy, BOB, BOB)
    problems: list[str] = []
    assert load_registry(approvers_dir, problems) == {}
    assert "one key names one person" in problems[0]


def test_missing_directory_means_nobody_is_enrolled(tmp_path):
    problems: list[str] = []
    assert load_registry(tmp_path / "nowhere", problems) == {}
    assert "operate-mcp approver init" in problems[0]


# --- keys and signatures ------------------------------------------------------------------------------


def test_private_key_is_encrypted_and_only_its_owner_can_read_it(approvers_dir):
    private = enrol(approvers_dir, "alice", ALICE)
    assert private.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((approvers_dir / "alice.pub").stat().st_mode) == 0o644
    assert stat.S_IMODE(approvers_dir.stat().st_mode) == 0o755
    kind, b64 = (approvers_dir / "alice.pub").read_text().split()
    assert kind == "ed25519" and len(base64.b64decode(b64)) == 32


def test_key_id_is_the_start_of_the_public_key_hash(approvers_dir):
    enrol(approvers_dir, "alice", ALICE)
    [key] = load_registry(approvers_dir).values()
    assert key.key_id == key_id_of(base64.b64decode(key.public_key)) and len(key.key_id) == 16


def test_payload_is_canonical_json_of_what_is_approved():
    assert json.loads(approval_payload(SESSION, VERSION, DIGEST, TIER)) == {
        "purpose": "operate-mcp approval v1",
        "session_id": SESSION,
        "version": VERSION,
        "digest": DIGEST,
        "tier": TIER,
    }
    assert approval_payload(SESSION, VERSION, DIGEST, TIER) == (
        b'{"digest":"' + DIGEST.encode() + b'","purpose":"operate-mcp approval v1",'
        b'"session_id":"opr-20260101-abcdef","tier":"critical","version":2}'
    )


def test_signature_verifies_and_names_the_enrolled_person(approvers_dir):
    key_path = enrol(approvers_dir, "bob", BOB)
    key_id, signature = signed(key_path)
    payload = approval_payload(SESSION, VERSION, DIGEST, TIER)
    assert verify_approval(load_registry(approvers_dir), key_id, payload, signature).identity == user_name(BOB)


@pytest.mark.parametrize(
    "tampered",
    [
        approval_payload("opr-20260101-ffffff", VERSION, DIGEST, TIER),
        approval_payload(SESSION, VERSION + 1, DIGEST, TIER),
        approval_payload(SESSION, VERSION, "cd" * 32, TIER),
        approval_payload(SESSION, VERSION, DIGEST, "low"),
    ],
    ids=["other-session", "other-version", "other-digest", "other-tier"],
)
def test_signature_for_one_approval_does_not_verify_another(approvers_dir, tampered):
    key_path = enrol(approvers_dir, "bob", BOB)
    key_id, signature = signed(key_path)
    with pytest.raises(SignatureError, match="does not match this approval"):
        verify_approval(load_registry(approvers_dir), key_id, tampered, signature)


def test_signature_by_a_key_nobody_enrolled_is_refused(approvers_dir, tmp_path):
    enrol(approvers_dir, "bob", BOB)
    stray = enrol(tmp_path / "elsewhere", "mallory", ALICE)
    key_id, signature = signed(stray)
    with pytest.raises(SignatureError, match=f"approver key {key_id} is not enrolled"):
        verify_approval(
            load_registry(approvers_dir), key_id, approval_payload(SESSION, VERSION, DIGEST, TIER), signature
        )


def test_wrong_passphrase_does_not_unlock_the_key(approvers_dir):
    key_path = enrol(approvers_dir, "bob", BOB)
    with pytest.raises(SignatureError, match=f"the passphrase does not unlock {key_path}"):
        sign_approval(key_path, "wrong horse", approval_payload(SESSION, VERSION, DIGEST, TIER))


def test_missing_key_says_how_to_create_one(tmp_path):
    with pytest.raises(SignatureError, match="operate-mcp approver init"):
        sign_approval(tmp_path / "none.pem", PASSPHRASE, b"x")


def test_init_refuses_short_passphrases_and_existing_keys(approvers_dir):
    with pytest.raises(OperateError, match="at least 8 characters"):
        init_key(approvers_dir.parent / "k.pem", approvers_dir, "short", "alice")
    key_path = enrol(approvers_dir, "alice", ALICE)
    with pytest.raises(OperateError, match="refusing to replace"):
        init_key(key_path, approvers_dir, PASSPHRASE, "alice")
    replaced = init_key(key_path, approvers_dir, PASSPHRASE, "alice", force=True)
    assert signed(key_path)[0] == replaced.key_id


# --- the terminal -------------------------------------------------------------------------------------

READ = "from operate_mcp.approvers import read_passphrase; print(read_passphrase('passphrase: '))"


def test_passphrase_cannot_be_piped_in_without_a_terminal():
    proc = subprocess.run(
        [sys.executable, "-c", READ],
        input=PASSPHRASE + "\n",
        capture_output=True,
        text=True,
        start_new_session=True,  # no controlling terminal, as for an agent's shell
        check=False,
    )
    assert proc.returncode != 0 and PASSPHRASE not in proc.stdout
    assert "approvals need a person at a terminal" in proc.stderr


def cli_env(approvers_dir, **extra):
    return {**os.environ, "OPERATE_MCP_APPROVERS_DIR": str(approvers_dir), **extra}


def test_approver_init_asks_twice_at_the_terminal_and_enrols_the_os_user(approvers_dir, tmp_path):
    key_path = tmp_path / "me.pem"
    code, out = run_in_terminal(
        ["approver", "init", "--key", str(key_path)],
        cli_env(approvers_dir, USER="alice", LOGNAME="alice"),
        [("New passphrase", PASSPHRASE), ("The same passphrase again", PASSPHRASE)],
    )
    assert code == 0, out
    assert PASSPHRASE not in out  # not echoed
    me = os_user()
    assert (approvers_dir / f"{me}.pub").is_file() and not (approvers_dir / "alice.pub").exists()
    listed = subprocess.run(
        [sys.executable, "-m", "operate_mcp", "approver", "list", "--format", "json"],
        capture_output=True,
        text=True,
        env=cli_env(approvers_dir),
        check=True,
    )
    [key] = json.loads(listed.stdout)["keys"]
    assert key["identity"] == me and key["key_id"] == signed(key_path)[0]


def test_approver_init_with_two_different_passphrases_creates_nothing(approvers_dir, tmp_path):
    key_path = tmp_path / "me.pem"
    code, out = run_in_terminal(
        ["approver", "init", "--key", str(key_path)],
        cli_env(approvers_dir),
        [("New passphrase", PASSPHRASE), ("The same passphrase again", "another horse")],
    )
    assert code == 2 and "the two passphrases differ" in out
    assert not key_path.exists() and not approvers_dir.exists()


def test_approver_list_shows_ignored_files_and_why(approvers_dir):
    enrol(approvers_dir, "alice", ALICE)
    enrol(approvers_dir, "bob", BOB)
    os.chmod(approvers_dir / "bob.pub", 0o666)
    listed = subprocess.run(
        [sys.executable, "-m", "operate_mcp", "approver", "list"],
        capture_output=True,
        text=True,
        env={**cli_env(approvers_dir), "COLUMNS": "250"},
        check=True,
    )
    assert user_name(ALICE) in listed.stdout
    assert "bob.pub: ignored: writable by group or others" in listed.stdout
