"""A MySQL-family password glued to its short flag (`mysql -uroot -psqlpw`) is masked; `-p` anywhere else stays.

For mysql, mariadb, mysqldump, mysqladmin and their siblings `-pVALUE` is the password (`-p` alone, or `-p`
then a space, asks for it at a prompt: the next word is a database name, and stays). The value is masked
where such a command is shown: a command line in a log or a `sh -c` string, a container's command/args list
(JSON, YAML, or argv kept in a record), describe's `Command:`/`Args:` lines and its exec probes. Elsewhere
`-p` means something else and stays readable: `kubectl patch -p '{...}'`, `mkdir -p`, `ssh -p 22`, `docker run
-p 8080:80`, mysql's `-P3306` (the port), and a `mysql` that names a pod, a deployment or a container.
"""

from __future__ import annotations

import json

import pytest

from operate_mcp.redact import MASK, redact, redact_plain, redact_text

WAYS = {"redact_plain": redact_plain, "redact_text": redact_text}

GLUED = [
    ("mysql -uroot -psqlpw", "sqlpw"),
    ("mysql -u root -psqlpw shop", "sqlpw"),
    ("mysqladmin -p'secret' ping", "secret"),
    ('mysqladmin ping -uroot -p"s3cr3t pw"', "s3cr3t pw"),
    ("mysqldump -h db -uroot -pdump-pw --all-databases > /backup/all.sql", "dump-pw"),
    ("mariadb -uroot -pmariapw", "mariapw"),
    ("mariadb-dump -uroot -pmariadumppw shop", "mariadumppw"),
    ("mysqlcheck -pcheckpw --all-databases", "checkpw"),
    ("/usr/bin/mysql -uroot -pabspath", "abspath"),
    ("mysql -uroot -p123456", "123456"),  # digits only, the classic
    ("mycli -h db -u app -pmyclipw shop", "myclipw"),
    ("mysql -uroot -p=eqpw", "eqpw"),
    ("mysql -uroot -psec;ret", "sec;ret"),
    ("2026-01-01T00:00:00Z running: mysql -h db -uapp -papp-pw -e 'select 1'", "app-pw"),
    ("sh -c \"mysql -uroot -p$MYSQL_ROOT_PASSWORD -e 'show databases'\"", "$MYSQL_ROOT_PASSWORD"),
    ("kubectl exec -it mysql-0 -- mysql -uroot -pexecpw", "execpw"),
    ("docker exec -it mysql mysql -uroot -pdockerpw", "dockerpw"),
    ("mysql -uroot -pfirst && mysqladmin -psecond ping", "first"),
    ("mysql -uroot -pfirst && mysqladmin -psecond ping", "second"),
    # describe's exec probe, one line
    ("    Liveness:   exec [mysqladmin ping -uroot -pprobepw] delay=30s timeout=5s period=10s", "probepw"),
    # a container's command as JSON or a YAML flow list, on one line
    ('{"command":["mysql","-uroot","-pjsonpw"]} trailing', "jsonpw"),
    ('        command: ["mysqladmin", "ping", "-uroot", "-pflowpw"]', "flowpw"),
    ("        command: [mysqladmin, ping, -uroot, -pflowpw2]", "flowpw2"),
    ('"args": ["-c", "mysql -uroot -pquotedpw"]', "quotedpw"),
    ("mysql -uroot -pmy\\ spaced\\ pw shop", "spaced"),  # a shell-escaped space
    ("mysql -uroot --password=longpw", "longpw"),
    ("mysqldump -n mysql -pdbnamedpw", "dbnamedpw"),  # mysqldump's -n, then a database named mysql
    ("mysql --hostname mysql -phostpw", "hostpw"),
    # a shell line continued: describe shows a `sh -c` script as written
    ("      mysqladmin ping \\\n        -uroot -pcontinuedpw", "continuedpw"),
    # env assignments the clients read
    ("PGPASSWORD=pgpw psql -h db", "pgpw"),
    ("MYSQL_PWD=mypwd mysql -uroot", "mypwd"),
    ("export MYSQL_PWD='quoted-pwd'", "quoted-pwd"),
]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(("text", "secret"), GLUED, ids=[f"{t} ({s})" for t, s in GLUED])
def test_a_password_glued_to_a_mysql_clients_p_flag_is_masked(text: str, secret: str, way: str) -> None:
    out = WAYS[way](text)
    assert secret not in out and MASK in out, out


def test_only_the_value_is_masked_and_the_command_stays_readable() -> None:
    assert redact_plain("mysql -uroot -psqlpw -P3306 shop") == f"mysql -uroot -p{MASK} -P3306 shop"
    assert redact_plain("mysqladmin -p'secret' ping") == f"mysqladmin -p{MASK} ping"


KEPT = [
    "kubectl patch deployment web -p '{\"spec\":{\"replicas\":3}}'",
    "kubectl patch deploy mysql -p'{\"spec\":{\"replicas\":3}}'",  # mysql is the deployment's name
    "kubectl patch statefulset mysql -n shop -p'[{\"op\":\"remove\",\"path\":\"/spec/x\"}]' --type=json",
    "kubectl logs mysql-0 -c mysql -p",
    "mkdir -p /var/lib/mysql",
    "mkdir -pv /var/lib/mysql",  # no client runs: mysql is a directory here
    "ssh -p 22 admin@mysql.shop.svc",
    "docker run -p 8080:80 nginx",
    "docker run --name mysql -p3306:3306 -d mysql:8.0",  # the container's name, then docker's -p
    "mysql -uroot -p",  # asks at a prompt
    "mysql -uroot -p shop",  # -p then a space: a prompt, and shop is the database
    "mysql -uroot -p 'pw'",
    "mysql -uroot --password shop",  # mysql's --password takes a value only with '='
    "mysql -h db -P3306 -uroot",  # -P is the port
    "Image:          mysql:8.0",
    "mysql: [Warning] Using a password on the command line interface can be insecure.",
    "mysql-0   1/1   Running   0   5m",
    "grep -p pattern file",
    "tar -pxf backup.tar",
]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("text", KEPT)
def test_p_flags_that_are_no_mysql_password_stay(text: str, way: str) -> None:
    assert WAYS[way](text) == text


DESCRIBE = """\
Containers:
  db:
    Image:      mysql:8.0
    Command:
      mysqladmin
    Args:
      ping
      -uroot
      -pdescribepw
      -P3306
    Liveness:   exec [mysqladmin ping -uroot -pprobepw] delay=30s timeout=5s period=10s
  backup:
    Command:
      /usr/bin/mysqldump
      -h
      db
      -pbackuppw
      shop
  web:
    Command:
      /app/server
    Args:
      -pool-size
      -p8080
"""


def test_describe_masks_the_glued_password_in_a_clients_command_and_args_lines() -> None:
    out = redact_plain(DESCRIBE)
    for secret in ("describepw", "probepw", "backuppw"):
        assert secret not in out
    assert f"      -p{MASK}\n      -P3306\n" in out
    assert "      -pool-size\n      -p8080\n" in out, "a -p of another program stays"


CONTAINER = {
    "name": "db",
    "image": "mysql:8.0",
    "command": ["mysqladmin"],
    "args": ["ping", "-uroot", "-pargspw", "-P3306"],
    "livenessProbe": {"exec": {"command": ["mysqladmin", "ping", "-uroot", "-pprobepw"]}},
    "readinessProbe": {"exec": {"command": ["sh", "-c", "mysql -uroot -pshpw -e 'select 1'"]}},
}
OTHER = {"name": "web", "image": "web:1", "command": ["/app/server"], "args": ["-pool", "-p8080"]}


def test_container_command_and_args_lists_mask_the_glued_password() -> None:
    out = redact({"spec": {"containers": [CONTAINER, OTHER]}})
    db, web = out["spec"]["containers"]
    assert db["args"] == ["ping", "-uroot", f"-p{MASK}", "-P3306"]
    assert db["livenessProbe"]["exec"]["command"] == ["mysqladmin", "ping", "-uroot", f"-p{MASK}"]
    assert "shpw" not in db["readinessProbe"]["exec"]["command"][2]
    assert web == OTHER


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"kind": "Pod", "spec": {"containers": [CONTAINER]}}, indent=2),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: db}\nspec:\n  containers:\n  - name: db\n    image: mysql\n"
        "    command: [mysqladmin]\n    args: [ping, -uroot, -pargspw]\n"
        "    livenessProbe:\n      exec:\n        command:\n        - mysqladmin\n        - -pprobepw\n",
    ],
    ids=["json", "yaml"],
)
def test_a_manifest_read_as_structure_masks_it_too(text: str) -> None:
    out = redact_text(text)
    assert "argspw" not in out and "probepw" not in out and "shpw" not in out
    assert "mysqladmin" in out


def test_an_argv_record_masks_it_and_keeps_kubectls_patch_body() -> None:
    assert redact(["kubectl", "exec", "db-0", "--", "mysql", "-uroot", "-pexecpw"])[-1] == f"-p{MASK}"
    patch = ["kubectl", "patch", "deployment", "mysql", "-n", "shop", "-p{\"spec\":{}}"]
    assert redact(patch) == patch
