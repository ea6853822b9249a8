"""Offline consistency checks of the deploy files, beyond what the schema validators see.

Run by `.ci/validate-deploy` (with PyYAML and jsonschema from `uv run --with`):

    check_deploy.py compose                      docker-compose.yml semantics
    check_deploy.py kustomizations               every kustomization lists existing files, and
                                                 every manifest file is listed somewhere
    check_deploy.py manifests OUT_DIR FILE...    split rendered manifests into core resources
                                                 (OUT_DIR/core-N.yaml, for kubernetes-validate)
                                                 and CRDs (KEDA: checked against our schema),
                                                 then check the product's own rules on them
    check_deploy.py list-resources DIR           resource files of DIR/kustomization.yaml
                                                 (when no kustomize renders them)

Exit status 1 with one line per problem; the schema validators run separately.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SECRET_NAME = "zuora-workflow-sync"
SECRET_KEYS = {"DATABASE_URL", "ENCRYPTION_KEYS", "API_KEYS"}
COMMANDS_GROUP_SUFFIX = ".commands"
# Who may open a connection to the brokers / the database (audit S2), by app.kubernetes.io/name.
DATASTORE_CLIENTS = {
    9092: {"customer-api", "sync-worker", "scheduler", "zuora-workflow-sync-kafka-topics"},
    5432: {"customer-api", "sync-worker", "zuora-workflow-sync-migrate"},
}

problems: list[str] = []


def problem(message: str) -> None:
    problems.append(message)


def contract_topics() -> list[str]:
    """ALL_TOPICS of sync_messages.topics, read with ast (no import, no dependencies)."""
    path = ROOT / "libs/sync_messages/src/sync_messages/topics.py"
    names: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                names[target] = node.value.value
            elif target == "ALL_TOPICS" and isinstance(node.value, ast.Tuple):
                return [names[elt.id] for elt in node.value.elts if isinstance(elt, ast.Name)]
    raise SystemExit(f"ALL_TOPICS not found in {path}")


def console_scripts() -> set[str]:
    scripts: set[str] = set()
    for pyproject in ROOT.glob("*/*/pyproject.toml"):
        data = tomllib.loads(pyproject.read_text())
        scripts.update(data.get("project", {}).get("scripts", {}))
    return scripts


def dockerfile_user() -> str | None:
    users = re.findall(r"^USER\s+(\S+)", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    return users[-1] if users else None


# --- docker-compose.yml -------------------------------------------------------------------------


def check_compose() -> None:
    path = ROOT / "docker-compose.yml"
    doc = yaml.safe_load(path.read_text())
    services: dict[str, Any] = doc.get("services", {})
    if "version" in doc:
        problem("docker-compose.yml: drop the obsolete top-level `version:` key")
    scripts = console_scripts() | {"python"}
    for name, svc in services.items():
        profiled = bool(svc.get("profiles"))
        for dep, spec in (svc.get("depends_on") or {}).items():
            if dep not in services:
                problem(f"compose: {name} depends on unknown service {dep}")
                continue
            if not profiled and services[dep].get("profiles"):
                problem(f"compose: {name} (always on) depends on {dep}, which is in a profile")
            condition = (spec or {}).get("condition")
            if condition == "service_healthy" and "healthcheck" not in services[dep]:
                problem(f"compose: {name} waits for {dep} to be healthy; it has no healthcheck")
            if condition == "service_completed_successfully" and services[dep].get(
                "restart", "no"
            ) not in ("no", "on-failure"):
                problem(f'compose: one-shot {dep} must not restart (restart: "no")')
        command = svc.get("command")
        if svc.get("build") and isinstance(command, list) and command[0] not in scripts:
            problem(f"compose: {name} runs {command[0]!r}, not a console script of the workspace")
    for required in (
        "kafka",
        "postgres",
        "migrate",
        "create-topics",
        "customer-api",
        "sync-worker",
        "scheduler",
        "zuora-sandbox",
    ):
        if required not in services:
            problem(f"compose: service {required} is missing")
    if services.get("zuora-sandbox", {}).get("profiles") != ["sandbox"]:
        problem("compose: zuora-sandbox must be under the `sandbox` profile only")
    if (services.get("sync-worker", {}).get("deploy") or {}).get("replicas", 1) < 2:
        problem("compose: sync-worker should run several replicas")
    script = json.dumps(services.get("create-topics", {}))
    for topic in contract_topics():
        if topic not in script:
            problem(f"compose: create-topics does not create {topic}")
    # Every ${VAR:?...} the file insists on must be in the committed example env file.
    example = ROOT / ".env.compose.example"
    defined = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", example.read_text(), re.MULTILINE))
    for var in set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", path.read_text())):
        if var not in defined:
            problem(f"compose: {var} is required but not in {example.name}")
    for secret in ("ENCRYPTION_KEYS", "API_KEYS", "POSTGRES_PASSWORD"):
        if secret not in defined:
            problem(f"{example.name}: {secret} is missing")


# --- kustomization files ------------------------------------------------------------------------


def _kustomization_refs(kdir: Path, doc: dict[str, Any]) -> Iterator[str]:
    yield from doc.get("resources", [])
    yield from doc.get("components", [])
    for patch in doc.get("patches", []) + doc.get("patchesStrategicMerge", []):
        if isinstance(patch, str):
            yield patch
        elif "path" in patch:
            yield patch["path"]


def check_kustomizations() -> None:
    listed: set[Path] = set()
    for kfile in sorted(K8S.rglob("kustomization.yaml")):
        kdir = kfile.parent
        doc = yaml.safe_load(kfile.read_text())
        rel = kfile.relative_to(ROOT)
        for ref in _kustomization_refs(kdir, doc):
            target = (kdir / ref).resolve()
            if "://" in ref:
                problem(f"{rel}: remote resource {ref} cannot be validated offline")
            elif target.is_dir():
                if not (target / "kustomization.yaml").is_file():
                    problem(f"{rel}: {ref} is a directory without kustomization.yaml")
            elif not target.is_file():
                problem(f"{rel}: {ref} does not exist")
            else:
                listed.add(target)
                list(yaml.safe_load_all(target.read_text()))  # parses (every document)
    for manifest in sorted(K8S.rglob("*.yaml")):
        if manifest.name != "kustomization.yaml" and manifest.resolve() not in listed:
            problem(f"{manifest.relative_to(ROOT)} is not listed in any kustomization.yaml")


# --- rendered manifests -------------------------------------------------------------------------


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("containers", [])) + list(spec.get("initContainers", []))


def _selected_names(selector: dict[str, Any]) -> set[str] | None:
    """The app.kubernetes.io/name values a pod selector is limited to; None if unlimited."""
    name = selector.get("matchLabels", {}).get("app.kubernetes.io/name")
    if name is not None:
        return {name}
    for expr in selector.get("matchExpressions", []):
        if expr.get("key") == "app.kubernetes.io/name" and expr.get("operator") == "In":
            return set(expr.get("values", []))
    return None


def _rule_ports(rule: dict[str, Any]) -> set[int]:
    return {int(p["port"]) for p in rule.get("ports", []) if "port" in p}


def check_network_policies(policies: list[dict[str, Any]], origin: str, *, app: bool) -> None:
    """Kafka and PostgreSQL are reachable only by the pods that need them.

    In the product's manifests (``app``): a default deny of ingress and egress for every pod,
    and every egress rule to a datastore port in a policy selecting only its clients. In the
    datastores' policies: every ingress peer is a named namespace, and the product's pods in it
    are limited to the datastore's clients.
    """
    if not policies:
        problem(f"{origin}: no NetworkPolicy (Kafka and PostgreSQL would be open to every pod)")
        return
    if app and not any(
        p["spec"].get("podSelector") == {}
        and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    ):
        problem(f"{origin}: no default-deny NetworkPolicy (podSelector {{}}, Ingress and Egress)")
    for policy in policies:
        where = f"{origin}: NetworkPolicy/{policy['metadata']['name']}"
        spec = policy["spec"]
        selected = _selected_names(spec.get("podSelector", {}))
        for rule in spec.get("egress", []) if app else []:
            for port in _rule_ports(rule) & DATASTORE_CLIENTS.keys():
                allowed = DATASTORE_CLIENTS[port]
                if selected is None or not selected <= allowed:
                    problem(f"{where}: egress to port {port} from pods beyond {sorted(allowed)}")
                if not rule.get("to"):
                    problem(f"{where}: egress to port {port} towards any destination")
        for rule in spec.get("ingress", []) if not app else []:
            ports = _rule_ports(rule) & DATASTORE_CLIENTS.keys()
            for peer in rule.get("from", []):
                if "namespaceSelector" not in peer:
                    continue  # the datastore's own namespace
                if not peer["namespaceSelector"].get("matchLabels"):
                    problem(f"{where}: ingress from every namespace")
                names = _selected_names(peer.get("podSelector", {}))
                for port in ports:
                    if names is not None and not names <= DATASTORE_CLIENTS[port]:
                        problem(f"{where}: port {port} open to {sorted(names)}")
            if not rule.get("from") and ports:
                problem(f"{where}: port {sorted(ports)} open to every pod")


def check_policies(docs: list[dict[str, Any]], origin: str) -> None:
    """The product's rules on a set of manifests (a rendered base or overlay)."""
    scripts = console_scripts() | {"python"}
    uid = dockerfile_user()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in docs:
        by_kind.setdefault(obj["kind"], []).append(obj)
    if set(by_kind) == {"NetworkPolicy"}:  # deploy/k8s/datastore-policies
        check_network_policies(by_kind["NetworkPolicy"], origin, app=False)
        return
    check_network_policies(by_kind.get("NetworkPolicy", []), origin, app=True)
    if by_kind.get("Secret"):
        problem(f"{origin}: contains a Secret: secret values are never committed")
    for want in (
        "Deployment",
        "Job",
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
        "ScaledObject",
    ):
        if want not in by_kind:
            problem(f"{origin}: no {want}")
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    for name in ("customer-api", "sync-worker", "scheduler"):
        if name not in deployments:
            problem(f"{origin}: Deployment {name} is missing")

    for obj in by_kind.get("Deployment", []) + by_kind.get("Job", []):
        where = f"{origin}: {obj['kind']}/{obj['metadata']['name']}"
        pod = obj["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problem(f"{where}: pod securityContext.runAsNonRoot must be true")
        if uid and str(psc.get("runAsUser")) != uid.split(":")[0]:
            problem(f"{where}: runAsUser {psc.get('runAsUser')} != Dockerfile USER {uid}")
        for c in _containers(obj):
            cwhere = f"{where} container {c['name']}"
            command = c.get("command") or []
            if not command or command[0] not in scripts:
                problem(f"{cwhere}: command {command[:1]} is not a console script of the image")
            res = c.get("resources", {})
            if not res.get("requests", {}).get("memory") or not res.get("requests", {}).get("cpu"):
                problem(f"{cwhere}: needs cpu and memory requests")
            if not res.get("limits", {}).get("memory"):
                problem(f"{cwhere}: needs a memory limit")
            csc = c.get("securityContext", {})
            if csc.get("allowPrivilegeEscalation") is not False:
                problem(f"{cwhere}: allowPrivilegeEscalation must be false")
            if csc.get("readOnlyRootFilesystem") is not True:
                problem(f"{cwhere}: readOnlyRootFilesystem should be true")
            if obj["kind"] == "Deployment" and not (
                c.get("livenessProbe") and c.get("readinessProbe")
            ):
                problem(f"{cwhere}: needs liveness and readiness probes")
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and (ref["name"] != SECRET_NAME or ref["key"] not in SECRET_KEYS):
                    problem(f"{cwhere}: secretKeyRef {ref} is not one of {SECRET_NAME}'s keys")
                if env.get("name") in SECRET_KEYS and "value" in env:
                    problem(f"{cwhere}: {env['name']} given as a literal value")

    configmaps = by_kind.get("ConfigMap", [])
    data = configmaps[0].get("data", {}) if configmaps else {}
    if by_kind.get("Deployment") and data.get("METRICS_HOST") != "0.0.0.0":  # noqa: S104
        problem(
            f"{origin}: ConfigMap METRICS_HOST must be 0.0.0.0 (probes and scrapes use the pod IP)"
        )
    for key in data:
        if key in SECRET_KEYS:
            problem(f"{origin}: ConfigMap holds secret {key}")
    schema = json.loads((DEPLOY / "ci/keda-scaledobject.schema.json").read_text())
    for obj in by_kind.get("ScaledObject", []):
        where = f"{origin}: ScaledObject/{obj['metadata']['name']}"
        for error in jsonschema.Draft202012Validator(schema).iter_errors(obj):
            path = "/".join(str(p) for p in error.absolute_path)
            problem(f"{where}: {path}: {error.message}")
        target = obj["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            problem(f"{where}: scales unknown Deployment {target}")
        elif "replicas" in deployments[target]["spec"]:
            problem(f"{where}: Deployment {target} sets replicas; each apply would fight KEDA")
        try:
            partitions = int(data["KAFKA_TOPIC_PARTITIONS"])
            concurrency = int(data.get("WORKER_CONCURRENCY", "4"))
            group = data.get("WORKER_GROUP_ID", "sync-worker") + COMMANDS_GROUP_SUFFIX
        except (KeyError, ValueError):
            problem(f"{origin}: ConfigMap lacks KAFKA_TOPIC_PARTITIONS / WORKER_CONCURRENCY")
            continue
        ceiling = partitions // concurrency
        if obj["spec"].get("maxReplicaCount") != ceiling:
            problem(
                f"{where}: maxReplicaCount {obj['spec'].get('maxReplicaCount')} != "
                f"KAFKA_TOPIC_PARTITIONS / WORKER_CONCURRENCY = {partitions}/{concurrency}"
            )
        if partitions % concurrency:
            problem(f"{origin}: KAFKA_TOPIC_PARTITIONS is not a multiple of WORKER_CONCURRENCY")
        if obj["spec"].get("minReplicaCount", 0) > obj["spec"].get("maxReplicaCount", 0):
            problem(f"{where}: minReplicaCount > maxReplicaCount")
        for trigger in obj["spec"]["triggers"]:
            meta = trigger.get("metadata", {})
            if trigger.get("type") == "kafka":
                if meta.get("consumerGroup") != group:
                    problem(f"{where}: consumerGroup {meta.get('consumerGroup')} != {group}")
                if meta.get("topic") != "workflow-sync.commands.v1":
                    problem(f"{where}: topic must be workflow-sync.commands.v1")


def check_manifests(out_dir: Path, files: list[Path]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(files):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for d in docs:
            if not isinstance(d, dict) or not {"apiVersion", "kind", "metadata"} <= d.keys():
                problem(f"{path}: a document without apiVersion/kind/metadata")
        docs = [d for d in docs if isinstance(d, dict) and "kind" in d]
        core = [
            d
            for d in docs
            if "." not in d["apiVersion"].split("/")[0]
            or d["apiVersion"].split("/")[0].endswith(".k8s.io")
        ]
        (out_dir / f"core-{index}.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False))
        check_policies(docs, path.name)


def main(argv: list[str]) -> int:
    if not argv:
        sys.stdout.write(__doc__ or "")
        return 2
    verb, rest = argv[0], argv[1:]
    if verb == "compose":
        check_compose()
    elif verb == "kustomizations":
        check_kustomizations()
    elif verb == "list-resources":
        # Fallback without kustomize: the resource files of one kustomization, in order.
        kdir = Path(rest[0])
        for ref in yaml.safe_load((kdir / "kustomization.yaml").read_text())["resources"]:
            if (kdir / ref).is_file():
                sys.stdout.write(f"{kdir / ref}\n")
        return 0
    elif verb == "manifests":
        check_manifests(Path(rest[0]), [Path(f) for f in rest[1:]])
    else:
        sys.stderr.write(f"unknown verb {verb}\n")
        return 2
    for line in dict.fromkeys(problems):
        sys.stderr.write(f"FAIL {line}\n")
    if not problems:
        sys.stdout.write(f"ok -- {verb}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
