"""One redactor (`operate_mcp.redact`): every credential shape either former module knew, the shapes the weak
one let reach the model (URL passwords, Basic credentials), cloud keys, tokens and private keys; and the
innocent look-alikes that must stay readable.

The look-alikes are decided here, so a future rule that swallows them fails a test:
- a name *about* a secret keeps its value: `password_policy: strict`, `secretName: db`, `token_expiry: 3600`,
  `input_tokens: 1200` (a name masks only when it ends in the secret word);
- URLs without a password keep everything (`postgres://db:5432/app`, `https://user@host`);
- `Basic` followed by words that do not decode as base64 text (`Basic authentication`) stays;
- certificates and public keys stay (they are public); private keys of every flavour are masked;
- key ids and prefixes in prose (`AKIA is the prefix ...`, an AWS account ARN, a JWT header alone) stay;
- in an Azure SAS URL only `sig` is masked: `sv`, `se`, `sp` say what the signature allows and stay.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from operate_mcp.config import Settings
from operate_mcp.knowledge.models import Pattern
from operate_mcp.knowledge.retrieval import Hit, RetrievedContext
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.tools import ToolBox
from operate_mcp.records.alerts import FailureAlerts
from operate_mcp.redact import MASK, redact, redact_manifest, redact_plain, redact_text

BASIC = "YWRtaW46aHVudGVyMg=="  # base64 of admin:hunter2
JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2hvcDp3ZWIifQ."
    "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
)
KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
GCP_SERVICE_ACCOUNT = json.dumps(
    {
        "type": "service_account",
        "project_id": "shop-prod",
        "private_key_id": "1f2e3d4c5b6a",
        "private_key": f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n",
        "client_email": "web@shop-prod.iam.gserviceaccount.com",
    },
    indent=2,
)

# (id, text, the part that must not survive)
SECRETS = [
    # the former operate_mcp.redact, which filtered what the model saw
    ("weak: pem private key", f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\n-----END RSA PRIVATE KEY-----", KEY_BODY),
    ("weak: bearer", "curl -H 'X-Token: Bearer abcdefghijklmnop123'", "abcdefghijklmnop123"),
    ("weak: jwt", f"token in the log: {JWT}", "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"),
    ("weak: password=", "login failed with password=hunter22", "hunter22"),
    ("weak: api_key json", '{"api_key": "k3y-v4lue-99"}', "k3y-v4lue-99"),
    ("weak: client-secret", "client-secret: 8f7e6d5c4b3a", "8f7e6d5c4b3a"),
    ("weak: password with &", "password=ab12&cd34", "cd34"),
    ("weak: anthropic key", "ANTHROPIC=sk-ant-api03-xyzxyzxyzxyz", "xyzxyzxyzxyz"),
    # the former audit/redact.py
    ("strong: authorization token", "Authorization: Token abcdef123456", "abcdef123456"),
    ("strong: env password", "DB_PASSWORD=s3cr3tvalue", "s3cr3tvalue"),
    ("strong: flag", "kubectl --token=abc123def456 get pods", "abc123def456"),
    ("strong: passphrase", "ssh_passphrase: correct-horse", "correct-horse"),
    ("strong: url password", "https://deploy:pa55word@git.example.com/shop.git", "pa55word"),
    ("strong: unterminated key", f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}", KEY_BODY),
    # URL credentials
    ("postgres url", "postgres://admin:hunter2@db:5432/app", "hunter2"),
    ("mysql url", "mysql://root:t0ps3cret@mysql.shop.svc:3306/orders", "t0ps3cret"),
    ("redis url without user", "redis://:r3d1spass@cache:6379/0", "r3d1spass"),
    ("amqp url", "amqp://guest:gu3stpw@rabbit:5672/%2f", "gu3stpw"),
    ("https url", "https://user:pass1234@registry.example.com/v2/", "pass1234"),
    ("mongodb+srv url", "mongodb+srv://app:m0ng0pw@cluster0.example.net/db", "m0ng0pw"),
    ("@ in the password", "postgres://admin:p@ssw0rd@db/app", "ssw0rd"),
    ("jdbc url", "jdbc:mysql://app:jdbcpw99@db:3306/shop", "jdbcpw99"),
    # Authorization headers
    ("basic header", f"Authorization: Basic {BASIC}", BASIC),
    ("bearer header", f"Authorization: Bearer {JWT}", JWT.split(".")[2]),
    ("basic header as json", f'{{"headers": {{"authorization": "Basic {BASIC}"}}}}', BASIC),
    ("basic in an env value", f"AUTH=Basic {BASIC}", BASIC),
    ("basic as describe shows it", f"      AUTH:          Basic {BASIC}", BASIC),
    ("bearer in an env value", "UPSTREAM_AUTH=Bearer 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706"),
    # DATABASE_URL-style environment values
    ("DATABASE_URL", "DATABASE_URL=postgres://u:p4ssw0rd@h/db", "p4ssw0rd"),
    ("REDIS_URL", "REDIS_URL=redis://default:r3dis-pw@cache:6379", "r3dis-pw"),
    ("describe env", "      DATABASE_URL:  postgres://admin:hunter2@db:5432/app", "hunter2"),
    ("env in yaml", "env:\n- name: DATABASE_URL\n  value: postgres://admin:hunter2@db:5432/app\n", "hunter2"),
    ("go mysql dsn", "DATABASE_URL=shop:dsnpa55@tcp(mysql:3306)/orders", "dsnpa55"),
    # AWS
    ("aws access key id", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "IOSFODNN7EXAMPLE"),
    ("aws sts key id", "ASIAY34FZKBOKMUTVV7A was issued", "Y34FZKBOKMUTVV7A"),
    ("aws secret ini", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("aws secret env", "AWS_SECRET_ACCESS_KEY:  wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    # GCP
    ("gcp service account json", GCP_SERVICE_ACCOUNT, KEY_BODY),
    ("gcp api key", "maps key AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY in the config", "SyD-9tSrke72PouQMnMX"),
    # Azure
    (
        "azure storage connection string",
        "DefaultEndpointsProtocol=https;AccountName=shopdata;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6"
        "IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net",
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1",
    ),
    (
        "azure sas url",
        "https://shopdata.blob.core.windows.net/backups?sv=2022-11-02&ss=b&sp=rl&se=2026-01-01&sig=xZ3%2Bq9Lk%3D",
        "xZ3%2Bq9Lk",
    ),
    (
        "azure shared access signature",
        "SharedAccessSignature=sv=2022-11-02&sr=c&sig=Qm9vb3Rz%2FSIGvalue%3D&se=2026-01-01",
        "Qm9vb3Rz",
    ),
    ("azure service bus key", "Endpoint=sb://bus.servicebus.windows.net/;SharedAccessKey=sbKey123+/=", "sbKey123"),
    # JWTs
    ("jwt alone", JWT, "c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"),
    ("service account token", f"token: {JWT}", "eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2hvcDp3ZWIifQ"),
    # PEM blocks
    ("pkcs8 key", f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----", KEY_BODY),
    ("ec key", f"-----BEGIN EC PRIVATE KEY-----\n{KEY_BODY}\n-----END EC PRIVATE KEY-----", KEY_BODY),
    (
        "encrypted key",
        f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{KEY_BODY}\n-----END ENCRYPTED PRIVATE KEY-----",
        KEY_BODY,
    ),
    (
        "pgp private key",
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{KEY_BODY}\n-----END PGP PRIVATE KEY BLOCK-----",
        KEY_BODY,
    ),
    ("key in json string", json.dumps({"tls": f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----"}),
     KEY_BODY),
    # GitHub and Slack
    ("github classic token", "GITHUB_TOKEN ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "a1B2c3D4e5F6g7H8i9J0"),
    ("github app token", "cloned with ghs_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2", "Z9y8X7w6V5u4T3s2R1q0"),
    ("github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv", "11ABCDEFG0123456789_"),
    ("slack bot token", "SLACK=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "AbCdEfGhIjKlMnOpQrStUvWx"),
    ("slack app token", "xapp-1-A0123456789-1234567890123-abcdef0123456789abcdef", "abcdef0123456789abcdef"),
    ("slack webhook", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
     "XXXXXXXXXXXXXXXXXXXXXXXX"),
]

LOOK_ALIKES = [
    ("password_policy", "password_policy: strict"),
    ("secretName", "secretName: db-credentials"),
    ("secretKeyRef", "valueFrom:\n  secretKeyRef:\n    name: db\n    key: password\n"),
    ("input_tokens", "input_tokens: 1200"),
    ("token_expiry", "token_expiry: 3600"),
    ("url without credentials", "postgres://db:5432/app"),
    ("DATABASE_URL without credentials", "DATABASE_URL=postgres://db.shop.svc:5432/app?sslmode=require"),
    ("url with a user only", "https://deploy@git.example.com/shop.git"),
    ("url with a port", "https://example.com:8443/healthz"),
    ("image digest", "docker://registry.example.com/app@sha256:4f5e6d7c8b9a"),
    ("basic as a word", "Basic authentication is enabled"),
    ("basic settings", "Basic settings"),
    ("bearer challenge", 'WWW-Authenticate: Bearer realm="kubernetes"'),
    ("certificate", "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----"),
    ("public key", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZI\n-----END PUBLIC KEY-----"),
    ("aws prefix in prose", "AKIA is the prefix of long-term AWS access key ids"),
    ("aws arn", "arn:aws:iam::123456789012:role/shop-web"),
    ("gcp service account name", '{"type": "service_account", "client_email": "web@shop.iam.gserviceaccount.com"}'),
    ("azure account name", "AccountName=shopdata;EndpointSuffix=core.windows.net"),
    ("azure url without sas", "https://shopdata.blob.core.windows.net/backups?restype=container&comp=list"),
    ("jwt header alone", "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ"),
    ("github prefix in prose", "ghp_ is the prefix of GitHub personal access tokens"),
    ("slack channel", "alerts go to #ops-alerts on Slack"),
    ("git sha", "commit 9fceb02d0ae598e95dc970b74767f19372d61af8"),
]

WAYS = {"redact_plain": redact_plain, "redact_text": redact_text}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(("text", "secret"), [(t, s) for _, t, s in SECRETS], ids=[i for i, _, _ in SECRETS])
def test_every_known_credential_shape_is_masked(text: str, secret: str, way: str) -> None:
    assert secret in text, "the sample must hold its secret"
    out = WAYS[way](text)
    assert secret not in out and "[REDACTED" in out


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("text", [t for _, t in LOOK_ALIKES], ids=[i for i, _ in LOOK_ALIKES])
def test_innocent_look_alikes_stay_readable(text: str, way: str) -> None:
    assert WAYS[way](text) == text


def test_structured_values_mask_the_same_shapes() -> None:
    env = [
        {"name": "DATABASE_URL", "value": "postgres://admin:hunter2@db:5432/app"},
        {"name": "AUTH", "value": f"Basic {BASIC}"},
        {"name": "LOG_LEVEL", "value": "info"},
    ]
    out = json.dumps(redact({"spec": {"containers": [{"name": "app", "env": env}]}}))
    assert "hunter2" not in out and BASIC not in out and '"info"' in out


def test_a_url_password_is_masked_in_a_manifest_on_stdin() -> None:
    stdin = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata:\n  url: postgres://admin:hunter2@db/app\n"
    out = redact_manifest(stdin)
    assert "hunter2" not in out and "postgres://admin:" in out


def test_plain_text_is_never_parsed_so_a_manifest_in_prose_stays_readable() -> None:
    """Why two text entry points: `redact_text` reads a manifest-looking string as a manifest and masks it whole
    when it cannot (right for the audit log), which would blank a `describe` of a ConfigMap holding a manifest."""
    describe = "Name:  proxy\nData\n====\nconfig.yaml:\n----\napiVersion: v1\nkind: Config\nmode: ipvs\n"
    assert redact_plain(describe) == describe
    assert redact_text(describe).startswith(MASK)


# ----------------------------------------------------------------------------- where the weak one was used


@pytest.fixture
def fake_kubectl(tmp_path: Path) -> Callable[[str], Kubectl]:
    """A real runner starting a real process: a stand-in kubectl that prints what a cluster would."""

    def make(stdout: str) -> Kubectl:
        (tmp_path / "out.txt").write_text(stdout)
        script = tmp_path / "kubectl"
        script.write_text(f"#!/bin/sh\ncat {tmp_path / 'out.txt'}\n")
        script.chmod(0o755)
        return Kubectl(Settings(data_dir=tmp_path / "data", kubectl=str(script)))

    return make


DESCRIBE = f"""Name:                   web
Namespace:              shop
Pod Template:
  Containers:
   app:
    Image:      nginx:1.27
    Environment:
      DATABASE_URL:  postgres://admin:hunter2@db:5432/app
      AUTH:          Basic {BASIC}
      LOG_LEVEL:     info
"""


def test_the_models_describe_output_masks_url_passwords_and_basic_credentials(fake_kubectl) -> None:
    text, call = ToolBox(fake_kubectl(DESCRIBE)).call(
        "kube_describe", {"resource": "deployment", "name": "web", "namespace": "shop"}
    )
    assert call.ok
    assert "hunter2" not in text and BASIC not in text
    assert "postgres://admin:[REDACTED]@db:5432/app" in text and "LOG_LEVEL:     info" in text


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]], threading.Event]]:
    bodies: list[dict[str, object]] = []
    got = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            got.set()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies, got
    server.shutdown()
    server.server_close()


def test_alert_log_and_webhook_mask_url_passwords_and_basic_credentials(tmp_path: Path, webhook) -> None:
    url, bodies, got = webhook
    alerts = FailureAlerts(tmp_path, url)
    alerts.alert({
        "at": datetime(2026, 2, 3, tzinfo=UTC),
        "request_id": "run-1",
        "intent": "point web at postgres://admin:hunter2@db:5432/app",
        "error": f"upstream said 401 to AUTH=Basic {BASIC}",
    })
    assert got.wait(5)
    alerts.close()
    written = (tmp_path / "alerts" / "intent-failures.log").read_text() + json.dumps(bodies)
    assert "hunter2" not in written and BASIC not in written and "postgres://admin:" in written


def test_knowledge_text_masks_credentials_and_keeps_its_yaml_examples() -> None:
    example = "apiVersion: apps/v1\nkind: Deployment\nenv:\n- name: DATABASE_URL\n  value: postgres://admin:hunter2@db/app"
    pattern = Pattern.model_validate({
        "id": "db-env",
        "name": "Database from the environment",
        "description": f"Pass the DSN as an env var, with AUTH=Basic {BASIC} for the proxy.",
        "recommendation": {
            "summary": "Set DATABASE_URL",
            "resources": [{"kind": "Deployment", "action": "update", "description": "env", "example": example}],
        },
        "rationale": "twelve-factor",
    })
    hit = Hit(item=pattern, score=1.0, vector=1.0, keyword=1.0)
    text = RetrievedContext(intent="use the database", patterns=[hit]).render()
    assert "hunter2" not in text and BASIC not in text
    assert "kind: Deployment" in text and "postgres://admin:[REDACTED]@db/app" in text
