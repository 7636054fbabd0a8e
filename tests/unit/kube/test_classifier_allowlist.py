"""Mutating commands carry only the flags on their allow-list, nothing makes kubectl log or list Secret
data, and a command's stdin must match what it reads (issue #9, findings 4 and 9)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.classifier import check_stdin, classify, classify_command, with_server_dry_run
from operate_mcp.model.command import CommandClass

READ = CommandClass.READ
DRY = CommandClass.DRY_RUN
MUT = CommandClass.MUTATING
FORBID = CommandClass.FORBIDDEN

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: b\n"

# (command line, a phrase the reason must contain). Every row was `mutating` or `read` before the
# allow-lists, and its stdout (or stderr) could carry Secret data or wait on a prompt.
REFUSED: list[tuple[str, str]] = [
    # verbosity above 5 logs HTTP bodies; on any command, in every pflag spelling
    ("kubectl -v=6 get pods", "verbosity 6"),
    ("kubectl get secrets -v=9", "verbosity 9"),
    ("kubectl get secrets --v=9", "verbosity 9"),
    ("kubectl get secrets -v9", "verbosity 9"),
    ("kubectl get secrets -v 9", "verbosity 9"),
    ("kubectl get secrets --v 8", "verbosity 8"),
    ("kubectl get secrets -Av9", "verbosity 9"),
    ("kubectl get secrets --v=+9", "verbosity 9"),
    ("kubectl get secrets --v=010", "verbosity 10"),
    ("kubectl get secrets -v=high", "not a log verbosity level"),
    ("kubectl --v=9 annotate secret db note=x -n shop", "verbosity 9"),
    ("kubectl annotate secret db note=x -n shop -v=9 --dry-run=server", "verbosity 9"),
    ("kubectl apply -f - -v=7", "verbosity 7"),
    ("kubectl describe secret db -v=8", "verbosity 8"),
    ("kubectl get pods --vmodule=round_trippers=9", "--vmodule"),
    ("kubectl apply -f - --vmodule=request=9", "--vmodule"),
    ("kubectl get pods --vmodule=x=1", "--vmodule"),
    # smuggled inside another argument, as the hidden-flag check reads it
    ("kubectl get pods -n=--v=9", "hides the flag --v=9"),
    ("kubectl get pods -l app=web,-v9", "hides the flag -v=9"),
    ("kubectl get deployment/--vmodule=x=9", "--vmodule"),
    ("kubectl get pods -- --v=9", "after '--'"),
    # listings: current labels, annotations (last-applied-configuration) and env values
    ("kubectl annotate deploy/x a=b --list -n shop", "--list"),
    ("kubectl annotate secret db note=x --list", "last-applied-configuration"),
    ("kubectl annotate secret db note=x --list=true --dry-run=server", "--list"),
    ("kubectl label deploy/x a=b --list", "--list"),
    ("kubectl set env deploy/web --list", "--list"),
    ("kubectl set env deploy/web --list --resolve", "--list"),
    ("kubectl set env deploy/web A=b --resolve", "Secret and ConfigMap references"),
    ("kubectl set env deploy/web --from=secret/db", "--from"),
    ("kubectl set env deploy/web --from=configmap/cfg --keys=a", "--from"),
    ("kubectl set env deploy/web A=b --keys=a", "--keys"),
    ("kubectl set env deploy/web A=b --prefix=X_", "--prefix"),
    # prompts and stdin readers
    ("kubectl delete pod web-1 -i", "y/N"),
    ("kubectl delete pod web-1 --interactive", "y/N"),
    ("kubectl delete pods --all --interactive=true -n shop", "y/N"),
    ("kubectl set env deploy/web -e -", "stdin"),
    ("kubectl set env deploy/web --env=-", "stdin"),
    # flags no proposal of that command needs
    ("kubectl set image deployment/web app=nginx:1.27 --local -f -", "--local"),
    ("kubectl patch deploy web -p {} --local", "--local"),
    ("kubectl label pods web-1 a=b --local -f -", "--local"),
    ("kubectl set image deployment/web -f - app=nginx:1.27", "reads objects from a manifest"),
    ("kubectl scale -f - --replicas=2", "reads objects from a manifest"),
    ("kubectl rollout undo -f -", "reads objects from a manifest"),
    ("kubectl annotate -f - a=b", "reads objects from a manifest"),
    ("kubectl scale deploy/web --replicas=2 --all", "its flags are: --current-replicas"),
    ("kubectl scale deploy -l app=web --replicas=2", "-l (--selector)"),
    ("kubectl label pods a=b -A --all", "-A (--all-namespaces)"),
    ("kubectl annotate pods web a=b --field-selector=status.phase=Running", "--field-selector"),
    ("kubectl annotate pods web a=b --field-manager=ops", "--field-manager"),
    ("kubectl apply -f - --force", "--force"),
    ("kubectl apply -f - --overwrite=false", "--overwrite"),
    ("kubectl apply -f - --openapi-patch=false", "--openapi-patch"),
    ("kubectl create -f - --windows-line-endings", "--windows-line-endings"),
    ("kubectl create -f - -l app=web", "-l (--selector)"),
    ("kubectl patch deploy web -p {} --field-manager=x", "--field-manager"),
    ("kubectl autoscale deploy web --max=3 --save-config", "--save-config"),
    ("kubectl expose deploy web --port=80 --overrides={}", "--overrides"),
    ("kubectl expose deploy web --port=80 --override-type=json", "--override-type"),
    ("kubectl drain node1 --ignore-daemonsets --disable-eviction", "PodDisruptionBudgets"),
    ("kubectl drain node1 --chunk-size=10", "--chunk-size"),
    ("kubectl taint nodes n1 a=b:NoSchedule --validate=false", "--validate"),
    ("kubectl rollout undo deploy/web -l app=web", "-l (--selector)"),
    ("kubectl rollout restart deploy/web --field-manager=x", "--field-manager"),
    ("kubectl create secret generic s --type=Opaque --from-literal=a=b", "--from-literal"),
    ("kubectl create secret docker-registry r --docker-password=x", "--docker-password"),
    ("kubectl scale deploy/web --replicas=2 -h", "prints help"),
    ("kubectl create deployment web --image=nginx --help", "prints help"),
    ("kubectl scale deploy/web --replicas=2 --warnings-as-errors", "--warnings-as-errors"),
]


@pytest.mark.parametrize(("line", "phrase"), REFUSED, ids=[row[0] for row in REFUSED])
def test_flag_that_prints_secrets_or_is_off_the_allow_list_is_forbidden(line: str, phrase: str) -> None:
    verdict = classify(shlex.split(line))
    assert verdict.command_class is FORBID, verdict.reason
    assert phrase.lower() in verdict.reason.lower(), verdict.reason


def test_verbosity_hidden_in_one_argument_with_spaces_is_forbidden() -> None:
    verdict = classify(["kubectl", "get", "pods", "--namespace=shop --v=9"])
    assert verdict.command_class is FORBID
    assert "--v=9" in verdict.reason and "inside an argument" in verdict.reason


def test_refusal_names_the_flag_and_the_flags_the_command_may_carry() -> None:
    verdict = classify(["kubectl", "autoscale", "deploy", "web", "--max=3", "--save-config"])
    assert verdict.reason == (
        "'--save-config' is not a flag a kubectl autoscale proposal may carry; "
        "its flags are: --cpu-percent, --max, --min, --name"
    )


def test_refusal_of_a_short_flag_spells_its_long_name() -> None:
    verdict = classify(["kubectl", "rollout", "undo", "deploy/web", "-l", "app=web"])
    assert verdict.reason == (
        "'-l (--selector)' is not a flag a kubectl rollout undo proposal may carry; its flags are: --to-revision"
    )


def test_server_dry_run_of_a_listing_is_refused_before_it_runs() -> None:
    # The original attack: our pre-approval dry run returned `--list` output to the client.
    with pytest.raises(CommandRejected, match="--list"):
        with_server_dry_run(["kubectl", "annotate", "secret", "db", "note=x", "--list", "-n", "shop"])
    with pytest.raises(CommandRejected, match="verbosity 9"):
        with_server_dry_run(["kubectl", "scale", "deploy/web", "--replicas=2", "-v=9"])


def test_check_command_cli_says_forbidden_and_why() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "operate_mcp",
            "check-command",
            "--",
            "kubectl",
            "annotate",
            "deploy/x",
            "a=b",
            "--list",
            "-n",
            "shop",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 3, proc.stderr
    verdict = json.loads(proc.stdout)
    assert verdict["class"] == "forbidden"
    assert "'--list' on kubectl annotate prints the current labels, annotations" in verdict["reason"]


# (command line, whether kubectl can dry-run it). Every one is a change a proposal legitimately makes,
# with the flags it needs: the allow-lists must not have broken any of them.
STILL_ALLOWED: list[tuple[str, bool]] = [
    ("kubectl apply -f -", True),
    ("kubectl apply -f - -n shop", True),
    ("kubectl apply --server-side --force-conflicts --field-manager=operate -f -", True),
    ("kubectl apply --prune -l app=web --prune-allowlist=apps/v1/Deployment -f -", True),
    ("kubectl apply --prune --all -f -", True),
    ("kubectl apply -f - --wait --timeout=60s --validate=strict", True),
    ("kubectl apply -f - -o name", True),
    ("kubectl apply set-last-applied -f - --create-annotation", True),
    ("kubectl create -f - --save-config --field-manager=operate", True),
    ("kubectl create deployment web --image=nginx:1.27 --replicas=2 --port=80 -n shop", True),
    ("kubectl create configmap cfg --from-literal=level=debug --append-hash", True),
    ("kubectl create secret generic s --type=Opaque", True),
    ("kubectl create secret docker-registry r --docker-server=reg.example.com --docker-username=ci", True),
    ("kubectl create namespace staging", True),
    ("kubectl create job once --from=cronjob/nightly", True),
    ("kubectl create cronjob nightly --image=busybox --schedule=0_3_*_*_* --restart=OnFailure", True),
    ("kubectl create poddisruptionbudget web --selector=app=web --min-available=1", True),
    ("kubectl create service clusterip web --tcp=80:8080", True),
    ("kubectl create service nodeport web --tcp=80:8080 --node-port=30080", True),
    ("kubectl create serviceaccount deployer", True),
    ("kubectl create role reader --verb=get --verb=list --resource=pods", True),
    ("kubectl create rolebinding readers --role=reader --serviceaccount=shop:deployer", True),
    ("kubectl create clusterrolebinding ops --clusterrole=view --group=ops", True),
    ("kubectl create quota q --hard=pods=10", True),
    ("kubectl create ingress web --class=nginx --rule=shop.example.com/=web:80", True),
    ("kubectl create priorityclass high --value=1000 --description=important", True),
    ('kubectl patch deploy web --type=merge -p {"spec":{"replicas":3}}', True),
    ('kubectl patch deploy web --subresource=scale --type=merge -p {"spec":{"replicas":3}}', True),
    ("kubectl replace -f -", True),
    ("kubectl replace --force --grace-period=0 -f -", True),
    ("kubectl delete pod web-1 --grace-period=0 --force", True),
    ("kubectl delete deploy web --cascade=foreground --wait=false -n shop", True),
    ("kubectl delete pods -l app=old --ignore-not-found --timeout=30s", True),
    ("kubectl delete pods --all -n shop", True),
    ("kubectl delete pods -l app=old -A", True),
    ("kubectl delete pods --field-selector=status.phase=Failed -n shop", True),
    ("kubectl delete -f -", True),
    ("kubectl delete pod web-1 -o name", True),
    ("kubectl scale deploy/web --replicas=3 --current-replicas=2 --resource-version=123 --timeout=30s", True),
    ("kubectl autoscale deploy web --min=2 --max=5 --cpu-percent=80 --name=web", True),
    ("kubectl set image deploy/web app=nginx:1.27 -n shop", True),
    ("kubectl set image deploy -l app=web app=nginx:1.27", True),
    ("kubectl set image deploy --all app=nginx:1.27", True),
    ("kubectl set env deploy/web LOG_LEVEL=debug OLD- -c app --overwrite=false", True),
    ("kubectl set env deploy/web -e LOG_LEVEL=debug", True),
    ("kubectl set resources deploy/web -c app --limits=cpu=500m --requests=memory=128Mi", True),
    ("kubectl set selector svc/web app=web --resource-version=7", True),
    ("kubectl set serviceaccount deploy/web deployer", True),
    ("kubectl set subject rolebinding readers --serviceaccount=shop:deployer --group=devs", True),
    ("kubectl rollout undo deploy/web --to-revision=2", True),
    ("kubectl rollout restart deploy/web", False),
    ("kubectl rollout restart deploy -l app=web", False),
    ("kubectl rollout pause deploy/web", False),
    ("kubectl rollout resume deploy/web", False),
    ("kubectl label pods web-1 tier=front --overwrite --resource-version=5", True),
    ("kubectl label pods -l app=web tier=front", True),
    ("kubectl label pods --all tier=front -n shop", True),
    ("kubectl annotate deploy web owner=team-a", True),
    ("kubectl annotate deploy web owner-", True),
    ("kubectl cordon node1", True),
    ("kubectl uncordon -l pool=spot", True),
    (
        "kubectl drain node1 --ignore-daemonsets --delete-emptydir-data --force --grace-period=30 --timeout=5m "
        "--pod-selector=app=web --skip-wait-for-delete-timeout=10",
        True,
    ),
    ("kubectl taint nodes node1 dedicated=gpu:NoSchedule --overwrite", True),
    ("kubectl taint nodes -l pool=gpu dedicated=gpu:NoSchedule", True),
    ("kubectl taint nodes --all dedicated:NoSchedule-", True),
    (
        "kubectl expose deploy web --port=80 --target-port=8080 --protocol=TCP --type=ClusterIP --name=web-svc "
        "--selector=app=web -l app=web --session-affinity=ClientIP",
        True,
    ),
    ("kubectl -n shop --request-timeout=10s scale deploy/web --replicas=2 -v=5 --log-flush-frequency=5s", True),
    ("kubectl scale deploy/web --replicas=2 --v=0", True),
]


@pytest.mark.parametrize(("line", "dry_runnable"), STILL_ALLOWED, ids=[row[0] for row in STILL_ALLOWED])
def test_legitimate_change_is_still_mutating_and_still_dry_runs(line: str, dry_runnable: bool) -> None:
    argv = shlex.split(line)
    verdict = classify(argv)
    assert verdict.command_class is MUT, verdict.reason
    if dry_runnable:
        assert classify(with_server_dry_run(argv)).command_class is DRY


@pytest.mark.parametrize(
    "line",
    [
        "kubectl get pods -v=5",
        "kubectl get pods -v=0 --log-flush-frequency=1s",
        "kubectl auth can-i --list",
        "kubectl get secrets -o name -h",
        "kubectl logs web-1 --tail=10 -v=4",
        "kubectl wait --for=condition=Available deploy/web --local -f -",
    ],
)
def test_reads_keep_their_flags_up_to_verbosity_5(line: str) -> None:
    verdict = classify(shlex.split(line))
    assert verdict.command_class is READ, verdict.reason


# ----------------------------------------------------------------------------- stdin


@pytest.mark.parametrize("spelling", [["-f", "-"], ["-f-"], ["-f=-"], ["--filename=-"], ["--filename", "-"]])
def test_stdin_manifest_flag_without_a_manifest_is_refused(spelling: list[str]) -> None:
    argv = ["kubectl", "apply", *spelling]
    with pytest.raises(CommandRejected, match=r"reads a manifest from stdin .* but none is given"):
        check_stdin(argv, None)
    check_stdin(argv, MANIFEST)


def test_manifest_without_stdin_flag_is_refused() -> None:
    # Shown to the person approving, never applied: what they read would not be what runs.
    with pytest.raises(CommandRejected, match="does not read one"):
        check_stdin(["kubectl", "scale", "deploy/web", "--replicas=2"], MANIFEST)


def test_blank_manifest_is_refused() -> None:
    with pytest.raises(CommandRejected, match="empty"):
        check_stdin(["kubectl", "apply", "-f", "-"], " \n")


def test_command_without_stdin_and_without_manifest_passes() -> None:
    check_stdin(["kubectl", "scale", "deploy/web", "--replicas=2"], None)
    check_stdin(["kubectl", "logs", "-f", "web-1"], None)  # -f is --follow for logs


def test_reads_from_stdin_need_their_manifest_too() -> None:
    with pytest.raises(CommandRejected, match="none is given"):
        check_stdin(["kubectl", "diff", "-f", "-"], None)


def test_check_stdin_refuses_what_it_cannot_parse() -> None:
    with pytest.raises(CommandRejected, match="exec"):
        check_stdin(["kubectl", "exec", "web", "--", "sh"], None)


def test_classify_command_forbids_stdin_flag_without_a_manifest() -> None:
    verdict = classify_command(["kubectl", "apply", "-f", "-"], None)
    assert verdict.command_class is FORBID
    assert "'-f'" in verdict.reason and "none is given" in verdict.reason


def test_classify_command_forbids_a_manifest_nothing_reads() -> None:
    verdict = classify_command(["kubectl", "delete", "pod", "web-1"], MANIFEST)
    assert verdict.command_class is FORBID
    assert "does not read one" in verdict.reason


def test_classify_command_gives_the_argv_verdict_when_stdin_matches() -> None:
    assert classify_command(["kubectl", "apply", "-f", "-"], MANIFEST) == classify(["kubectl", "apply", "-f", "-"])
    assert classify_command(["kubectl", "apply", "-f", "-", "--dry-run=server"], MANIFEST).command_class is DRY
    assert classify_command(["kubectl", "get", "pods"], None).command_class is READ
    assert classify_command(["kubectl", "scale", "deploy/web", "--replicas=2"], None).command_class is MUT


def test_classify_command_keeps_the_argv_reason_for_forbidden_lines() -> None:
    argv = ["kubectl", "delete", "pod", "web-1", "-i"]
    assert classify_command(argv, None) == classify(argv)
    assert "y/N" in classify_command(argv, None).reason


@pytest.mark.parametrize(
    "patch",
    [
        '[{"op":"copy","from":"/data/password","path":"/type"}]',
        '[{"op":"move","from":"/data/password","path":"/metadata/name"}]',
        '[{"op":"test","path":"/data/password","value":"aHVudGVyMg=="}]',
        '[{"op":"add","from":"/data/password","path":"/type"}]',
        "not json",
        '{"op":"add"}',
    ],
)
def test_json_patch_that_reads_stored_values_is_forbidden(patch):
    """A proposed JSON patch that copies a Secret's data into a validated field makes the API server quote
    the value in the dry-run error, which goes back to the model; `test` confirms guesses."""
    argv = ["kubectl", "patch", "secret/db", "--type=json", "-p", patch, "-n", "shop"]
    assert classify(argv).command_class is CommandClass.FORBIDDEN


def test_json_patch_that_only_writes_is_mutating():
    argv = [
        "kubectl",
        "patch",
        "deploy/web",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":3}]',
    ]
    assert classify([*argv, "-n", "shop"]).command_class is CommandClass.MUTATING
