"""The kubectl command classifier: every proposed command gets a class and a reason in code."""

from __future__ import annotations

import hashlib
import json
import shlex

import pytest

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.classifier import classify, parse_kubectl, with_server_dry_run
from operate_mcp.model.command import Classification, CommandClass, ProposedCommand, command_digest, shell_quote
from operate_mcp.model.resources import canonical_resource

READ = CommandClass.READ
DRY = CommandClass.DRY_RUN
MUT = CommandClass.MUTATING
FORBID = CommandClass.FORBIDDEN

# (command line, expected class, a word the reason must contain). Lines are split with shlex,
# exactly as a person would type them; argv lists that need odd characters are further below.
TABLE: list[tuple[str, CommandClass, str]] = [
    # reads
    ("kubectl get pods -n shop", READ, "reads"),
    ("kubectl -n shop get pods", READ, "reads"),
    ("kubectl --namespace=shop get deploy web -o yaml", READ, "reads"),
    ("kubectl --request-timeout=5s get po", READ, "reads"),
    ("kubectl get deployments.apps web -o 'jsonpath={.spec.replicas}'", READ, "reads"),
    ("kubectl get pods -o go-template='{{range .items}}{{.metadata.name}}{{end}}'", READ, "reads"),
    ("kubectl get pods -o=custom-columns=NAME:.metadata.name", READ, "reads"),
    ("kubectl get pods,svc -l app=web -A", READ, "reads"),
    ("kubectl get pods -l 'tier in (front,back)'", READ, "reads"),
    ("kubectl get pods --field-selector=status.phase!=Running", READ, "reads"),
    ("kubectl get pods -w", READ, "reads"),
    ("kubectl get -f -", READ, "reads"),
    ("kubectl describe deployment/web -n shop", READ, "reads"),
    ("kubectl logs -f web-123 -c app --tail=50", READ, "reads"),
    ("kubectl logs deploy/web --previous --since=1h", READ, "reads"),
    ("kubectl logs -l app=web --all-containers", READ, "reads"),
    ("kubectl events --for=pod/web -n shop", READ, "reads"),
    ("kubectl top pods -n shop", READ, "reads"),
    ("kubectl top node", READ, "reads"),
    ("kubectl explain deployment.spec.replicas", READ, "reads"),
    ("kubectl api-resources --namespaced=true -o wide", READ, "reads"),
    ("kubectl api-versions", READ, "reads"),
    ("kubectl version --client", READ, "reads"),
    ("kubectl cluster-info", READ, "reads"),
    ("kubectl cluster-info dump -n shop", READ, "reads"),
    ("kubectl auth can-i delete pods -n shop", READ, "reads"),
    ("kubectl auth whoami", READ, "reads"),
    ("kubectl rollout status deploy/web -w --timeout=60s", READ, "reads"),
    ("kubectl rollout history deployment/web", READ, "reads"),
    ("kubectl diff -f -", READ, "reads"),
    ("kubectl wait --for=condition=Available deploy/web --timeout=60s", READ, "reads"),
    ("kubectl apply view-last-applied deploy/web", READ, "reads"),
    ("kubectl -v=5 get pods", READ, "reads"),
    ("kubectl get pods --log-flush-frequency=5s", READ, "reads"),
    ("kubectl auth can-i --list -n shop", READ, "reads"),
    # dry runs
    ("kubectl scale deployment/api --replicas=5 --dry-run=server", DRY, "--dry-run=server"),
    ("kubectl apply -f - --dry-run=client", DRY, "--dry-run=client"),
    ("kubectl delete -f - --dry-run=server", DRY, "--dry-run=server"),
    ("kubectl set image deploy/web nginx=nginx:1.27 --dry-run=server", DRY, "--dry-run=server"),
    ("kubectl rollout undo deployment/web --dry-run=server", DRY, "--dry-run=server"),
    ("kubectl create deployment web --image=nginx --dry-run=server", DRY, "--dry-run=server"),
    ("kubectl drain node1 --ignore-daemonsets --dry-run=server", DRY, "--dry-run=server"),
    ("kubectl delete pod web-1 -o name --dry-run=server", DRY, "--dry-run=server"),
    ("kubectl -n shop annotate deploy web owner=team-a --overwrite --dry-run=server", DRY, "--dry-run=server"),
    # mutating
    ("kubectl apply -f -", MUT, "stdin"),
    ("kubectl apply --server-side -f -", MUT, "apply"),
    ("kubectl apply --prune -l app=web -f -", MUT, "--prune"),
    ("kubectl create -f -", MUT, "create"),
    ("kubectl create deployment web --image=nginx:1.27 -n shop", MUT, "deployments/web"),
    ("kubectl create secret generic creds", MUT, "secrets/creds"),
    ("kubectl create configmap cfg --from-literal=level=debug", MUT, "configmaps/cfg"),
    ("kubectl set env deploy/web DB_PASS=hunter22", MUT, "deployments/web"),
    ("kubectl create namespace staging", MUT, "namespaces/staging"),
    ('kubectl patch deploy web -p \'{"spec":{"replicas":3}}\'', MUT, "deployments/web"),
    ("kubectl replace -f -", MUT, "replace"),
    ("kubectl delete pod web-123 -n shop", MUT, "pods/web-123"),
    ("kubectl delete pods --all -n shop", MUT, "--all"),
    ("kubectl delete pods -l app=old -A", MUT, "all namespaces"),
    ("kubectl delete namespace shop", MUT, "namespace"),
    ("kubectl delete ns/shop", MUT, "namespace"),
    ("kubectl scale deployment/api --replicas=5 -n shop", MUT, "deployments/api in namespace shop"),
    ("kubectl scale --replicas=3 deploy web", MUT, "deployments/web"),
    ("kubectl autoscale deployment web --min=2 --max=5 --cpu-percent=80", MUT, "deployments/web"),
    ("kubectl set image deployment/web nginx=nginx:1.27", MUT, "deployments/web"),
    ("kubectl set env deploy/web LOG_LEVEL=debug", MUT, "deployments/web"),
    ("kubectl set resources deploy/web -c app --limits=cpu=500m", MUT, "deployments/web"),
    ("kubectl rollout undo deployment/web --to-revision=2", MUT, "deployments/web"),
    ("kubectl rollout restart deployment/web", MUT, "deployments/web"),
    ("kubectl rollout -n shop pause deploy/web", MUT, "in namespace shop"),
    ("kubectl rollout resume deploy/web", MUT, "deployments/web"),
    ("kubectl label pods web-1 tier=front --overwrite", MUT, "pods/web-1"),
    ("kubectl annotate deploy web 'kubernetes.io/change-cause=update image to nginx:1.27'", MUT, "web"),
    ("kubectl cordon node1", MUT, "nodes/node1"),
    ("kubectl uncordon node1", MUT, "nodes/node1"),
    ("kubectl drain node1 --ignore-daemonsets --delete-emptydir-data", MUT, "evicts"),
    ("kubectl taint nodes node1 dedicated=gpu:NoSchedule", MUT, "nodes/node1"),
    ("kubectl expose deploy web --port=80 --target-port=8080", MUT, "deployments/web"),
    # forbidden: not kubectl, or not a command the agent may run
    ("/tmp/kubectl get pods", FORBID, "path"),
    ("/usr/bin/kubectl get pods", FORBID, "path"),
    ("sh -c 'kubectl get pods'", FORBID, "not kubectl"),
    ("oc get pods", FORBID, "not kubectl"),
    ("kubectl", FORBID, "no kubectl command"),
    ("kubectl exec -it web -- sh", FORBID, "exec"),
    ("kubectl cp web:/etc/passwd ./x", FORBID, "cp"),
    ("kubectl attach web", FORBID, "attach"),
    ("kubectl port-forward svc/web 8080:80", FORBID, "port-forward"),
    ("kubectl proxy", FORBID, "proxy"),
    ("kubectl debug web --image=busybox", FORBID, "debug"),
    ("kubectl run x --image=busybox", FORBID, "run"),
    ("kubectl edit deploy web", FORBID, "editor"),
    ("kubectl plugin list", FORBID, "plugin"),
    ("kubectl config view --raw", FORBID, "config"),
    ("kubectl config use-context prod", FORBID, "config"),
    ("kubectl auth reconcile -f -", FORBID, "reconcile"),
    ("kubectl kustomize ./overlay", FORBID, "kustomize"),
    ("kubectl kustomize", FORBID, "kustomize"),
    ("kubectl certificate approve csr-1", FORBID, "certificate"),
    ("kubectl create token default", FORBID, "token"),
    ("kubectl apply edit-last-applied deploy/web", FORBID, "editor"),
    ("kubectl foo", FORBID, "kubectl-foo"),
    ("kubectl rollout", FORBID, "subcommand"),
    ("kubectl create -f - --edit", FORBID, "editor"),
    # forbidden: credential and target overrides, in every spelling
    ("kubectl get pods --token=abc", FORBID, "--token"),
    ("kubectl get pods --token abc", FORBID, "--token"),
    ("kubectl --token abc get pods", FORBID, "--token"),
    ("kubectl get pods --kubeconfig=/tmp/other", FORBID, "--kubeconfig"),
    ("kubectl get pods --server https://evil:6443", FORBID, "--server"),
    ("kubectl get pods -s https://evil:6443", FORBID, "-s"),
    ("kubectl get pods -sfoo", FORBID, "-s"),
    ("kubectl get pods -s=foo", FORBID, "-s"),
    ("kubectl get pods -Asfoo", FORBID, "--server"),
    ("kubectl get po --as=system:admin", FORBID, "--as"),
    ("kubectl get po --as-group=system:masters", FORBID, "--as-group"),
    ("kubectl get po --as_group=system:masters", FORBID, "--as-group"),
    ("kubectl get po --as-uid=0", FORBID, "--as-uid"),
    ("kubectl get po --user=admin", FORBID, "--user"),
    ("kubectl get po --cluster=prod", FORBID, "--cluster"),
    ("kubectl get po --context prod", FORBID, "--context"),
    ("kubectl get po --certificate-authority=/tmp/ca.crt", FORBID, "--certificate-authority"),
    ("kubectl get po --client-certificate=/tmp/c.crt", FORBID, "--client-certificate"),
    ("kubectl get po --client-key=/tmp/c.key", FORBID, "--client-key"),
    ("kubectl get po --insecure-skip-tls-verify", FORBID, "--insecure-skip-tls-verify"),
    ("kubectl get po --insecure_skip_tls_verify=true", FORBID, "--insecure-skip-tls-verify"),
    ("kubectl get po --username=admin --password=hunter2", FORBID, "--username"),
    ("kubectl get po --tls-server-name=evil", FORBID, "--tls-server-name"),
    ("kubectl get po --cache-dir=/tmp/c", FORBID, "--cache-dir"),
    ("kubectl get po --TOKEN=x", FORBID, "--token"),
    ("kubectl create rolebinding ops --clusterrole=view --user=bob", FORBID, "--user"),
    ("kubectl logs web --insecure-skip-tls-verify-backend", FORBID, "--insecure-skip-tls-verify-backend"),
    # forbidden: overrides hidden in names, values or after --
    ("kubectl get deployment/--token=x", FORBID, "hides the flag --token"),
    ("kubectl get pods,--server=https://evil", FORBID, "hides the flag --server"),
    ("kubectl get pods -n --token=x", FORBID, "--token"),
    ("kubectl get pods -l app=web,--as=admin", FORBID, "hides the flag --as"),
    ("kubectl get pods -- --token=x", FORBID, "after '--'"),
    ("kubectl label pods web --overwrite -- --kubeconfig=/x", FORBID, "after '--'"),
    ("kubectl label pods web -- -x", FORBID, "'--'"),
    ("kubectl get deployment/-x", FORBID, "flag hidden"),
    # forbidden: local files and URLs instead of stdin
    ("kubectl apply -f manifest.yaml", FORBID, "local path"),
    ("kubectl apply -f https://example.com/x.yaml", FORBID, "URL"),
    ("kubectl apply --filename=/etc/k8s/x.yaml", FORBID, "local path"),
    ("kubectl apply -f - -f extra.yaml", FORBID, "extra.yaml"),
    ("kubectl diff -f ./manifest.yaml", FORBID, "local path"),
    ("kubectl apply -k ./overlay", FORBID, "--kustomize"),
    ("kubectl delete --kustomize=./overlay", FORBID, "--kustomize"),
    ("kubectl create configmap cfg --from-file=/etc/passwd", FORBID, "--from-file"),
    ("kubectl create secret generic s --from-env-file=.env", FORBID, "--from-env-file"),
    ("kubectl create secret tls t --cert=/tmp/c.crt --key=/tmp/c.key", FORBID, "--cert"),
    ("kubectl patch deploy web --patch-file=/tmp/p.json", FORBID, "--patch-file"),
    ("kubectl get pods -o go-template-file=/etc/passwd", FORBID, "local file"),
    ("kubectl get pods -o jsonpath-file=/tmp/t", FORBID, "local file"),
    ("kubectl cluster-info dump --output-directory=/tmp/dump", FORBID, "--output-directory"),
    ("kubectl get pods --profile=cpu --profile-output=/tmp/p", FORBID, "--profile"),
    # forbidden: mutating commands that print the object back (Secret data included), dry run or not
    ("kubectl annotate secret db -n x note=y -o json", FORBID, "read with kubectl get"),
    ("kubectl annotate secret db -n x note=y -o json --dry-run=server", FORBID, "print nothing but"),
    ("kubectl label secret db tier=a -oyaml", FORBID, "-oyaml (--output)"),
    ("kubectl patch secret db -p '{}' --output=jsonpath={.data}", FORBID, "--output"),
    ("kubectl patch secret db -p '{}' -o go-template --template={{.data}}", FORBID, "-o (--output)"),
    ("kubectl apply -f - -o yaml", FORBID, "read with kubectl get"),
    ("kubectl apply -f - --template={{.data}}", FORBID, "--template"),
    ("kubectl set env deploy/web A=b -o json", FORBID, "mutating commands"),
    ("kubectl scale deploy/web --replicas=2 -o yaml", FORBID, "mutating commands"),
    ("kubectl create deployment web --image=nginx --dry-run=client -o yaml", FORBID, "mutating commands"),
    ("kubectl set image deployment/web nginx=nginx:1.27 --local -f - -o yaml", FORBID, "mutating commands"),
    ("kubectl taint nodes n1 a=b:NoSchedule --show-managed-fields", FORBID, "--show-managed-fields"),
    ("kubectl rollout undo deploy/web -o json --dry-run=server", FORBID, "mutating commands"),
    # forbidden: flags that make kubectl print Secret data (logs at -v above 5, listings), or wait on stdin
    ("kubectl -v=6 get pods", FORBID, "verbosity 6"),
    ("kubectl get secrets -v=9", FORBID, "-v=5 or less"),
    ("kubectl scale deploy/web --replicas=2 --v=9 --dry-run=server", FORBID, "verbosity 9"),
    ("kubectl get pods --vmodule=round_trippers=9", FORBID, "--vmodule"),
    ("kubectl annotate deploy/x a=b --list -n shop", FORBID, "--list"),
    ("kubectl label secret db tier=a --list", FORBID, "last-applied-configuration"),
    ("kubectl set env deploy/web --list --resolve", FORBID, "--list"),
    ("kubectl set env deploy/web A=b --resolve", FORBID, "--resolve"),
    ("kubectl set env deploy/web --from=secret/db", FORBID, "--from"),
    ("kubectl delete pod web-1 -i", FORBID, "stdin"),
    ("kubectl set image deployment/web nginx=nginx:1.27 --local -f -", FORBID, "--local"),
    ("kubectl scale deploy/web --replicas=2 --all", FORBID, "its flags are"),
    # forbidden: secret values on the command line
    ("kubectl create secret generic x --from-literal=db-url=postgres://app:s3cr3t@db/x", FORBID, "stdin"),
    ("kubectl create secret generic x --from-literal=a=b --dry-run=server", FORBID, "--from-literal"),
    ("kubectl create secret docker-registry r --docker-password=hunter22", FORBID, "--docker-password"),
    # forbidden: raw API paths and dry-run that is not a dry run
    ("kubectl get --raw /api/v1/namespaces/kube-system/secrets", FORBID, "--raw"),
    ("kubectl create --raw /api/v1/namespaces -f -", FORBID, "--raw"),
    ("kubectl scale deploy/web --replicas=2 --dry-run=none", FORBID, "turns the dry run off"),
    ("kubectl scale deploy/web --replicas=2 --dry-run=false", FORBID, "turns the dry run off"),
    ("kubectl scale deploy/web --replicas=2 --dry-run", FORBID, "bare"),
    ("kubectl scale deploy/web --replicas=2 --dry-run server", FORBID, "is not --dry-run=server"),
    ("kubectl scale deploy/web --replicas=2 --dry-run=true", FORBID, "deprecated"),
    ("kubectl scale deploy/web --replicas=2 --dry-run=server --dry-run=none", FORBID, "2 times"),
    ("kubectl rollout restart deploy/web --dry-run=server", FORBID, "unknown flag"),
    ("kubectl get pods --dry-run=server", FORBID, "unknown flag"),
    # forbidden: shell metacharacters, and what kubectl itself would refuse
    ("kubectl get 'pods;id'", FORBID, "';'"),
    ("kubectl get pods '$(id)'", FORBID, "'$'"),
    ("kubectl get pods '`id`'", FORBID, "'`'"),
    ("kubectl get pods '|sh'", FORBID, "'|'"),
    ("kubectl get pods '>out'", FORBID, "'>'"),
    ("kubectl get pods -n shop -n kube-system", FORBID, "2 times"),
    ("kubectl get pods --no-such-flag", FORBID, "unknown flag"),
    ("kubectl -o yaml get pods", FORBID, "before the command name"),
    ("kubectl get pods --all-namespaces=maybe", FORBID, "not a boolean"),
]


@pytest.mark.parametrize(("line", "expected", "reason_word"), TABLE, ids=[row[0] for row in TABLE])
def test_command_line_gets_its_class_and_a_reason(line: str, expected: CommandClass, reason_word: str) -> None:
    verdict = classify(shlex.split(line))
    assert verdict.command_class is expected, verdict.reason
    assert reason_word.lower() in verdict.reason.lower()


def test_the_table_is_large_and_covers_every_class() -> None:
    assert len(TABLE) >= 80
    assert {row[1] for row in TABLE} == set(CommandClass)


@pytest.mark.parametrize(
    "argv",
    [
        ["kubectl", "get", "pods\nrm -rf /"],
        ["kubectl", "get", "pods\x00"],
        ["kubectl", "get", "pods\r"],
        ["kubectl", "get", "pods\tweb"],
        ["kubectl", "get", "pods", "web\u202e"],  # right-to-left override: shown text differs from what runs
        ["kubectl", "get", "pods", "we\u200bb"],  # zero-width space
    ],
)
def test_newlines_nul_and_invisible_characters_are_forbidden(argv: list[str]) -> None:
    verdict = classify(argv)
    assert verdict.command_class is FORBID
    assert "U+" in verdict.reason


def test_empty_command_is_forbidden() -> None:
    assert classify([]).command_class is FORBID
    assert "empty" in classify([]).reason


def test_empty_argument_is_forbidden() -> None:
    assert classify(["kubectl", "get", "pods", ""]).command_class is FORBID


def test_kubectl_path_is_forbidden_and_says_why() -> None:
    verdict = classify(["/tmp/kubectl", "get", "pods"])
    assert verdict.command_class is FORBID
    assert "/tmp/kubectl" in verdict.reason and "path" in verdict.reason


def test_token_hidden_in_resource_name_is_forbidden() -> None:
    verdict = classify(["kubectl", "get", "deployment/--token=x"])
    assert verdict.command_class is FORBID
    assert "deployment/--token=x" in verdict.reason


def test_override_hidden_inside_one_argument_with_spaces_is_forbidden() -> None:
    verdict = classify(["kubectl", "get", "pods", "--namespace=shop --server=https://evil"])
    assert verdict.command_class is FORBID
    assert "--server" in verdict.reason


def test_forbidden_flag_after_terminator_is_named() -> None:
    verdict = classify(["kubectl", "get", "pods", "--", "--as=admin"])
    assert verdict.command_class is FORBID
    assert "--as" in verdict.reason and "after '--'" in verdict.reason


def test_follow_flag_of_logs_is_not_a_filename() -> None:
    # -f means --follow for logs and --filename elsewhere; the per-command flag table decides.
    parsed = parse_kubectl(["kubectl", "logs", "-f", "web-1"])
    assert [f.name for f in parsed.flags] == ["follow"]
    assert parsed.names == ["web-1"]
    assert classify(["kubectl", "logs", "-f", "web-1"]).command_class is READ


@pytest.mark.parametrize("spelling", [["-f", "-"], ["-f-"], ["-f=-"], ["--filename=-"], ["--filename", "-"]])
def test_every_spelling_of_stdin_manifest_is_allowed(spelling: list[str]) -> None:
    argv = ["kubectl", "apply", *spelling]
    assert parse_kubectl(argv).uses_stdin
    assert classify(argv).command_class is MUT


def test_delete_namespace_is_mutating_and_the_reason_names_the_namespace() -> None:
    verdict = classify(["kubectl", "delete", "ns", "shop"])
    assert verdict.command_class is MUT
    assert "namespaces/shop" in verdict.reason and "namespace and everything in it" in verdict.reason


def test_classification_serialises_with_class_alias() -> None:
    verdict = classify(["kubectl", "get", "pods"])
    assert verdict.model_dump(by_alias=True, mode="json") == {
        "class": "read",
        "reason": "kubectl get only reads from the cluster",
    }
    assert verdict.model_dump(by_alias=True) == {"class": "read", "reason": verdict.reason}
    assert Classification.model_validate({"class": "mutating", "reason": "r"}).command_class is MUT


def test_classify_never_raises_on_garbage() -> None:
    for argv in (["kubectl", "---x"], ["kubectl", "--=x"], ["kubectl", "get", "-"], ["kubectl", "get", "-n"]):
        assert classify(argv).command_class is FORBID


# ----------------------------------------------------------------------------- parsing


def test_parse_reads_namespace_in_every_spelling() -> None:
    for argv in (
        ["kubectl", "get", "pods", "-n", "shop"],
        ["kubectl", "get", "pods", "-nshop"],
        ["kubectl", "get", "pods", "-n=shop"],
        ["kubectl", "get", "pods", "--namespace", "shop"],
        ["kubectl", "get", "pods", "--namespace=shop"],
        ["kubectl", "-n", "shop", "get", "pods"],
        ["kubectl", "--namespace=shop", "get", "pods"],
    ):
        assert parse_kubectl(argv).namespace == "shop", argv


def test_parse_global_flags_before_the_verb() -> None:
    parsed = parse_kubectl(["kubectl", "--request-timeout=5s", "-n", "shop", "get", "po", "web"])
    assert parsed.verb == "get"
    assert parsed.subverb is None
    assert parsed.namespace == "shop"
    assert parsed.resource_types == ["pods"]
    assert parsed.names == ["web"]
    assert [f.name for f in parsed.flags] == ["request-timeout", "namespace"]


def test_parse_type_slash_name_form() -> None:
    parsed = parse_kubectl(["kubectl", "get", "deployment/web", "svc/web"])
    assert [(r.type, r.resource, r.name) for r in parsed.resources] == [
        ("deployment", "deployments", "web"),
        ("svc", "services", "web"),
    ]


def test_parse_type_then_names_form() -> None:
    parsed = parse_kubectl(["kubectl", "delete", "deploy", "web", "api"])
    assert parsed.resource_types == ["deployments"]
    assert parsed.names == ["web", "api"]


def test_parse_grouped_and_versioned_types() -> None:
    assert parse_kubectl(["kubectl", "get", "deployments.apps", "web"]).resource_types == ["deployments"]
    assert parse_kubectl(["kubectl", "get", "deployments.v1.apps/web"]).resource_types == ["deployments"]
    custom = parse_kubectl(["kubectl", "get", "certificates.cert-manager.io", "tls"])
    assert custom.resource_types == ["certificates.cert-manager.io"]


def test_parse_comma_list_of_types() -> None:
    parsed = parse_kubectl(["kubectl", "get", "pods,svc,deploy", "-l", "app=web"])
    assert parsed.resource_types == ["pods", "services", "deployments"]
    assert parsed.names == []
    assert parsed.selector == "app=web"


def test_parse_mixed_forms_is_rejected() -> None:
    with pytest.raises(CommandRejected, match="TYPE/NAME"):
        parse_kubectl(["kubectl", "get", "deploy/web", "api"])


def test_parse_subverbs() -> None:
    assert parse_kubectl(["kubectl", "set", "image", "deploy/web", "app=nginx:1.27"]).subverb == "image"
    assert parse_kubectl(["kubectl", "rollout", "undo", "deploy/web"]).subverb == "undo"
    assert parse_kubectl(["kubectl", "rollout", "status", "deploy/web"]).subverb == "status"
    assert parse_kubectl(["kubectl", "auth", "can-i", "get", "pods"]).subverb == "can-i"
    assert parse_kubectl(["kubectl", "top", "po"]).subverb == "pod"
    assert parse_kubectl(["kubectl", "create", "deploy", "web", "--image=x"]).subverb == "deployment"
    assert parse_kubectl(["kubectl", "create", "secret", "generic", "s"]).subverb == "secret generic"
    assert parse_kubectl(["kubectl", "apply", "-f", "-"]).subverb is None


def test_parse_separates_targets_from_assignments() -> None:
    parsed = parse_kubectl(["kubectl", "set", "image", "deploy/web", "app=nginx:1.27", "sidecar=envoy:1.30"])
    assert parsed.names == ["web"]
    assert parsed.args == ["deploy/web", "app=nginx:1.27", "sidecar=envoy:1.30"]
    label = parse_kubectl(["kubectl", "label", "pods", "web-1", "tier=front", "old-"])
    assert label.resource_types == ["pods"] and label.names == ["web-1"]
    taint = parse_kubectl(["kubectl", "taint", "nodes", "n1", "gpu=true:NoSchedule", "spot:NoExecute-"])
    assert taint.resource_types == ["nodes"] and taint.names == ["n1"]


def test_parse_create_and_node_commands_imply_their_type() -> None:
    created = parse_kubectl(["kubectl", "create", "secret", "generic", "creds", "--from-literal=a=b"])
    assert [(r.resource, r.name) for r in created.resources] == [("secrets", "creds")]
    drained = parse_kubectl(["kubectl", "drain", "node-1", "--ignore-daemonsets"])
    assert [(r.resource, r.name) for r in drained.resources] == [("nodes", "node-1")]


def test_parse_all_namespaces_selector_and_dry_run() -> None:
    parsed = parse_kubectl(["kubectl", "delete", "pods", "-A", "-l", "app=old", "--dry-run=server"])
    assert parsed.all_namespaces
    assert parsed.selector == "app=old"
    assert parsed.dry_run == "server"
    assert not parse_kubectl(["kubectl", "get", "pods", "--all-namespaces=false"]).all_namespaces


def test_parse_reports_kubectl_reading_of_dry_run() -> None:
    assert parse_kubectl(["kubectl", "scale", "deploy/x", "--replicas=1", "--dry-run"]).dry_run == "client"
    assert parse_kubectl(["kubectl", "scale", "deploy/x", "--replicas=1", "--dry-run=none"]).dry_run == "none"
    assert parse_kubectl(["kubectl", "scale", "deploy/x", "--replicas=1", "--dry-run=false"]).dry_run == "none"
    assert parse_kubectl(["kubectl", "scale", "deploy/x", "--replicas=1"]).dry_run is None
    with pytest.raises(CommandRejected, match="dry-run mode"):
        parse_kubectl(["kubectl", "scale", "deploy/x", "--replicas=1", "--dry-run=bogus"])


def test_parse_short_flag_clusters_like_pflag() -> None:
    parsed = parse_kubectl(["kubectl", "get", "pods", "-Aw", "-owide"])
    assert [(f.name, f.value) for f in parsed.flags] == [("all-namespaces", None), ("watch", None), ("output", "wide")]
    assert parsed.output == "wide"


def test_parse_underscore_spelling_is_the_same_flag() -> None:
    parsed = parse_kubectl(["kubectl", "get", "pods", "--all_namespaces"])
    assert parsed.all_namespaces


def test_parse_trailing_arguments_after_terminator() -> None:
    parsed = parse_kubectl(["kubectl", "get", "pods", "--", "x"])
    assert parsed.has_terminator and parsed.trailing_args == ["x"]
    assert parsed.args == ["pods"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "empty"),
        (["helm", "list"], "not kubectl"),
        (["kubectl"], "no kubectl command"),
        (["kubectl", "exec", "web"], "forbidden"),
        (["kubectl", "frobnicate"], "kubectl-frobnicate"),
        (["kubectl", "get", "pods", "--bogus"], "unknown flag"),
        (["kubectl", "get", "pods", "-n"], "needs a value"),
        (["kubectl", "set"], "needs a subcommand"),
        (["kubectl", "create", "deployment", "a", "b", "--image=x"], "exactly one NAME"),
        (["kubectl", "version", "extra"], "takes no arguments"),
    ],
)
def test_unparseable_input_is_rejected_with_a_clear_message(argv: list[str], message: str) -> None:
    with pytest.raises(CommandRejected, match=message):
        parse_kubectl(argv)


def test_canonical_resource_spellings() -> None:
    assert canonical_resource("deploy") == "deployments"
    assert canonical_resource("Deployment") == "deployments"
    assert canonical_resource("deployments.apps") == "deployments"
    assert canonical_resource("hpa.v2.autoscaling") == "horizontalpodautoscalers"
    assert canonical_resource("ns") == "namespaces"
    assert canonical_resource("widgets.example.com") == "widgets.example.com"
    assert canonical_resource("widgets.v1beta1.example.com") == "widgets.example.com"
    assert canonical_resource("deployment.v1.apps") == "deployments"  # how a manifest's kind reads


# ----------------------------------------------------------------------------- dry-run rewriting


def test_server_dry_run_is_appended_to_a_mutating_command() -> None:
    argv = ["kubectl", "scale", "deployment/api", "--replicas=5", "-n", "shop"]
    assert with_server_dry_run(argv) == [*argv, "--dry-run=server"]
    assert classify(with_server_dry_run(argv)).command_class is DRY


def test_server_dry_run_replaces_a_client_dry_run() -> None:
    argv = ["kubectl", "apply", "--dry-run=client", "-f", "-"]
    assert with_server_dry_run(argv) == ["kubectl", "apply", "-f", "-", "--dry-run=server"]


def test_server_dry_run_is_idempotent() -> None:
    once = with_server_dry_run(["kubectl", "set", "image", "deploy/web", "app=nginx:1.27"])
    assert with_server_dry_run(once) == once


@pytest.mark.parametrize(
    "line",
    [
        "kubectl rollout undo deploy/web",
        "kubectl set image deploy/web app=nginx:1.27",
        "kubectl autoscale deploy web --min=2 --max=4",
        "kubectl label deploy web tier=front",
        "kubectl annotate deploy web owner=team-a",
        "kubectl cordon node1",
        "kubectl drain node1 --ignore-daemonsets",
        "kubectl taint nodes node1 gpu=true:NoSchedule",
        "kubectl delete deploy web",
        "kubectl create deployment web --image=nginx",
        'kubectl patch deploy web --type=merge -p \'{"spec":{"replicas":2}}\'',
    ],
)
def test_mutating_commands_that_kubectl_can_dry_run_get_a_server_dry_run(line: str) -> None:
    rewritten = with_server_dry_run(shlex.split(line))
    assert rewritten[-1] == "--dry-run=server"
    assert classify(rewritten).command_class is DRY


def test_rollout_restart_cannot_be_dry_run_and_says_what_to_do_instead() -> None:
    # kubectl (v1.32) has no --dry-run on rollout restart/pause/resume.
    with pytest.raises(CommandRejected, match="patch"):
        with_server_dry_run(["kubectl", "rollout", "restart", "deploy/web"])


@pytest.mark.parametrize(
    "argv",
    [
        ["kubectl", "get", "pods"],
        ["kubectl", "exec", "web", "--", "sh"],
        ["kubectl", "apply", "-f", "x.yaml"],
        ["kubectl", "set", "image", "deploy/web", "app=x", "--local", "-f", "-"],
    ],
)
def test_server_dry_run_refuses_reads_forbidden_and_local_commands(argv: list[str]) -> None:
    with pytest.raises(CommandRejected):
        with_server_dry_run(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["kubectl", "annotate", "secret", "db", "-n", "x", "note=y", "-o", "json"],
        ["kubectl", "patch", "secret", "db", "-p", "{}", "-o", "jsonpath={.data}"],
        ["kubectl", "apply", "-f", "-", "-oyaml"],
        ["kubectl", "create", "secret", "generic", "x", "--from-literal=db-url=postgres://app:s3cr3t@db/x"],
    ],
)
def test_server_dry_run_refuses_commands_that_would_print_or_carry_secret_values(argv: list[str]) -> None:
    # The dry-run output goes back to the agent: it must never hold the object the server has.
    with pytest.raises(CommandRejected, match="forbidden"):
        with_server_dry_run(argv)


# ----------------------------------------------------------------------------- proposed commands


def _cmd(*argv: str, stdin: str | None = None, description: str = "scale api") -> ProposedCommand:
    return ProposedCommand(argv=list(argv), stdin=stdin, description=description)


def test_shell_quote_is_what_a_person_would_type() -> None:
    argv = ["kubectl", "annotate", "deploy", "web", "note=hello world", "x='y'"]
    assert shell_quote(argv) == "kubectl annotate deploy web 'note=hello world' 'x='\"'\"'y'\"'\"''"
    assert shlex.split(shell_quote(argv)) == argv


def test_display_notes_a_manifest_on_stdin() -> None:
    plain = _cmd("kubectl", "scale", "deploy/api", "--replicas=5")
    assert plain.display == "kubectl scale deploy/api --replicas=5"
    piped = _cmd("kubectl", "apply", "-f", "-", stdin="kind: HorizontalPodAutoscaler\nmetadata: {}\n")
    assert piped.display.startswith("kubectl apply -f -")
    assert "2-line manifest on stdin" in piped.display


def test_digest_is_stable() -> None:
    commands = [
        _cmd("kubectl", "scale", "deploy/api", "--replicas=5"),
        _cmd("kubectl", "apply", "-f", "-", stdin="a: 1"),
    ]
    assert command_digest(commands) == command_digest([c.model_copy(deep=True) for c in commands])
    # Pinned: the encoding is a stored contract; changing it voids every approval in flight.
    assert command_digest([_cmd("kubectl", "get", "pods")]) == (
        "4fa45bb4851c978a67f191f110ebd9358988b95c4aff87658c0f4a1458325e75"
    )
    assert command_digest([_cmd("kubectl", "apply", "-f", "-", stdin="kind: X\n")]) == (
        "484a0d3ac7743c652bfc64cedcc5a169f6c7adbcf1babbca03982586daac1635"
    )


def test_digest_is_sha256_of_canonical_json() -> None:
    payload = json.dumps([{"argv": ["kubectl", "get", "pods"], "stdin": None}], sort_keys=True, separators=(",", ":"))
    assert command_digest([_cmd("kubectl", "get", "pods")]) == hashlib.sha256(payload.encode()).hexdigest()


def test_digest_ignores_descriptions() -> None:
    a = [_cmd("kubectl", "scale", "deploy/api", "--replicas=5", description="scale api")]
    b = [_cmd("kubectl", "scale", "deploy/api", "--replicas=5", description="something else entirely")]
    assert command_digest(a) == command_digest(b)


@pytest.mark.parametrize(
    "changed",
    [
        [_cmd("kubectl", "scale", "deploy/api", "--replicas=6"), _cmd("kubectl", "apply", "-f", "-", stdin="a: 1")],
        [_cmd("kubectl", "apply", "-f", "-", stdin="a: 1"), _cmd("kubectl", "scale", "deploy/api", "--replicas=5")],
        [_cmd("kubectl", "scale", "deploy/api", "--replicas=5"), _cmd("kubectl", "apply", "-f", "-", stdin="a: 2")],
        [_cmd("kubectl", "scale", "deploy/api", "--replicas=5"), _cmd("kubectl", "apply", "-f", "-", stdin="")],
        [_cmd("kubectl", "scale", "deploy/api", "--replicas=5"), _cmd("kubectl", "apply", "-f", "-")],
        [_cmd("kubectl", "scale", "deploy/api", "--replicas=5")],
        [
            _cmd("kubectl", "scale", "deploy/api", "--replicas=5", "-n", "x"),
            _cmd("kubectl", "apply", "-f", "-", stdin="a: 1"),
        ],
        [_cmd("kubectl", "scale", "deploy/api --replicas=5"), _cmd("kubectl", "apply", "-f", "-", stdin="a: 1")],
    ],
)
def test_digest_changes_with_any_argv_order_or_stdin_change(changed: list[ProposedCommand]) -> None:
    original = [
        _cmd("kubectl", "scale", "deploy/api", "--replicas=5"),
        _cmd("kubectl", "apply", "-f", "-", stdin="a: 1"),
    ]
    assert command_digest(changed) != command_digest(original)


def test_digest_of_argv_boundaries_cannot_collide() -> None:
    # ["a b"] and ["a", "b"] join to the same text; the JSON encoding keeps them apart.
    assert command_digest([_cmd("kubectl", "get pods")]) != command_digest([_cmd("kubectl", "get", "pods")])
