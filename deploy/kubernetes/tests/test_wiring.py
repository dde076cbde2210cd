"""The manifests wire the binaries as they listen and read: every variable
each needs is set, listeners bind 0.0.0.0 on the ports Services and probes
use, references resolve, the worker's grace and memory fit its pod. Where a
binary's default matters, it is read from target/debug/<binary> --help."""

from __future__ import annotations

import re

import pytest

from conftest import KUBE, container, env_of, need_help, pod_spec

AWS = {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DARKROOM_BUCKET"}
REQUIRED = {
    ("darkroom-web",): {"DATABASE_URL", "DARKROOM_BIND", "DARKROOM_ADMIN_BIND", "DARKROOM_LINK_SECRET",
                        "DARKROOM_ADMIN_TOKEN", "DARKROOM_WORKER_DB_ROLE", "DARKROOM_SCALER_DB_ROLE",
                        "DARKROOM_LOG_JSON"} | AWS,
    ("darkroom-web", "migrate"): {"DATABASE_URL", "DARKROOM_WORKER_DB_ROLE", "DARKROOM_SCALER_DB_ROLE"},
    ("darkroom-worker",): {"DATABASE_URL", "DARKROOM_WORKER_SCHEMA", "DARKROOM_WORKER_METRICS_BIND",
                           "DARKROOM_WORKER_SHUTDOWN_GRACE", "DARKROOM_WORKER_MAX_MEMORY",
                           "DARKROOM_WORKER_CONCURRENCY", "DARKROOM_WORKER_SANDBOX"} | AWS,
    ("darkroom-queue", "serve"): {"DATABASE_URL", "DARKROOM_QUEUE_BIND", "DARKROOM_ADMIN_TOKEN",
                                  "DARKROOM_SQS_ACCESS_KEYS"},
}
# Listeners: the variable that binds each, per binary.
BINDS = {"darkroom-web": ["DARKROOM_BIND", "DARKROOM_ADMIN_BIND"],
         "darkroom-worker": ["DARKROOM_WORKER_METRICS_BIND"], "darkroom-queue": ["DARKROOM_QUEUE_BIND"]}


def darkroom_containers(overlay):
    """(workload, container) for every container running a Darkroom binary."""
    for w in overlay.workloads():
        for c in pod_spec(w)["containers"]:
            if c.get("command", [""])[0] in BINDS:
                yield w, c


def literal(c, name):
    e = env_of(c).get(name)
    return None if e is None or "value" not in e else e["value"]


def test_every_binary_gets_the_variables_it_requires(overlay):
    seen = set()
    for w, c in darkroom_containers(overlay):
        key = tuple(c["command"][:2]) if tuple(c["command"][:2]) in REQUIRED else tuple(c["command"][:1])
        seen.add(key)
        missing = REQUIRED[key] - set(env_of(c))
        assert not missing, f"{w['metadata']['name']}: {sorted(missing)} unset"
    assert {("darkroom-web",), ("darkroom-web", "migrate"), ("darkroom-worker",)} <= seen


def test_worker_waits_for_the_schema_and_sandboxes_its_engine(overlay):
    c = container(overlay.get("Deployment", "darkroom-worker"))
    assert literal(c, "DARKROOM_WORKER_SCHEMA") == "wait"
    assert literal(c, "DARKROOM_WORKER_SANDBOX") == "on"
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["darkroom-worker", "drain"]


def resolve_port(c, port):
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
    assert port in named, f"{c['name']}: no port named {port}"
    return named[port]


def test_listeners_bind_all_interfaces_on_the_declared_ports(overlay):
    for w, c in darkroom_containers(overlay):
        declared = {p["containerPort"] for p in c.get("ports", [])}
        for var in BINDS[c["command"][0]]:
            value = literal(c, var)
            if value is None:
                continue  # migrate: no listener
            host, _, port = value.rpartition(":")
            assert host == "0.0.0.0", f"{w['metadata']['name']}: {var}={value} is not reachable from outside the pod"
            assert int(port) in declared, f"{w['metadata']['name']}: {var} port {port} not a containerPort"


def test_probes_reach_a_port_the_binary_listens_on(overlay):
    for w, c in darkroom_containers(overlay):
        listening = {int(literal(c, v).rpartition(":")[2]) for v in BINDS[c["command"][0]] if literal(c, v)}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe not in c:
                continue
            handler = c[probe].get("httpGet") or c[probe].get("tcpSocket")
            assert handler, f"{w['metadata']['name']}: {probe} is neither HTTP nor TCP"
            assert resolve_port(c, handler["port"]) in listening, f"{w['metadata']['name']}: {probe}"


def test_probe_paths_are_the_ones_each_binary_serves(overlay):
    web = container(overlay.get("Deployment", "darkroom-web"))
    worker = container(overlay.get("Deployment", "darkroom-worker"))
    assert {web[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")} == {"/healthz"}
    assert worker["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["livenessProbe"]["httpGet"]["path"] == "/livez"
    # Restarting the web does not fix a Postgres outage: liveness gives it minutes.
    live = web["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= 300


def test_every_service_target_port_exists_on_the_pods_it_selects(overlay):
    for svc in overlay.of_kind("Service"):
        selector = svc["spec"]["selector"]
        pods = [w for w in overlay.workloads()
                if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert pods, f"Service {svc['metadata']['name']} selects no pod"
        for port in svc["spec"]["ports"]:
            for w in pods:
                ports = [(p.get("name"), p["containerPort"]) for c in pod_spec(w)["containers"] for p in c.get("ports", [])]
                target = port["targetPort"]
                assert any(target in pair for pair in ports), \
                    f"Service {svc['metadata']['name']} targetPort {target} not on {w['metadata']['name']}"


def test_public_service_is_port_80_and_admin_stays_in_the_cluster(overlay):
    web = overlay.get("Service", "darkroom-web")
    admin = overlay.get("Service", "darkroom-admin")
    assert [(p["port"], p["targetPort"]) for p in web["spec"]["ports"]] == [(80, "http")]
    assert admin["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert resolve_port(container(overlay.get("Deployment", "darkroom-web")), "admin") == 8081
    assert all(p["port"] != 8081 for p in web["spec"]["ports"])


def user_created() -> dict[str, set[str]]:
    """Secrets the README says the user creates: rows `| \\`name\\` | \\`KEY\\`, ... |`
    of its table of Secrets."""
    text = (KUBE / "README.md").read_text()
    table = text.split("<!-- secrets-you-create -->")[1]
    made = {}
    for line in table.splitlines():
        m = re.match(r"\|\s*`(darkroom-[a-z0-9-]+)`\s*\|([^|]*)\|", line)
        if m:
            made[m[1]] = set(re.findall(r"`([A-Za-z_]+)`", m[2]))
        elif made and not line.startswith("|"):
            break
    return made


def references(overlay):
    for w in overlay.workloads():
        for c in pod_spec(w)["containers"]:
            for e in c.get("env", []):
                for kind, ref in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                    if ref in e.get("valueFrom", {}):
                        r = e["valueFrom"][ref]
                        yield w["metadata"]["name"], kind, r["name"], r["key"]
    for ta in overlay.of_kind("TriggerAuthentication"):
        for r in ta["spec"].get("secretTargetRef", []):
            yield ta["metadata"]["name"], "Secret", r["name"], r["key"]


def test_every_secret_and_config_map_reference_resolves(overlay):
    made = user_created()
    assert {"darkroom-web", "darkroom-worker", "darkroom-s3", "darkroom-scaler"} <= made.keys()
    for owner, kind, name, key in references(overlay):
        objects = [d for d in overlay.of_kind(kind) if d["metadata"]["name"] == name]
        if objects:
            keys = set(objects[0].get("data", {})) | set(objects[0].get("stringData", {}))
            assert key in keys, f"{owner}: {kind} {name} has no key {key}"
        else:
            assert kind == "Secret" and name in made, f"{owner}: {kind} {name} is neither rendered nor in the README"
            assert key in made[name], f"{owner}: the README's {name} has no key {key}"


def grace_of(overlay, helps):
    c = container(overlay.get("Deployment", "darkroom-worker"))
    value = literal(c, "DARKROOM_WORKER_SHUTDOWN_GRACE")
    if value is None:
        value = need_help(helps, "darkroom-worker").env.get("DARKROOM_WORKER_SHUTDOWN_GRACE")
    return int(value)


def test_termination_grace_outlasts_the_workers_shutdown_grace(overlay, helps):
    spec = pod_spec(overlay.get("Deployment", "darkroom-worker"))
    assert spec.get("terminationGracePeriodSeconds", 30) > grace_of(overlay, helps)


def mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 ** 2, "K": 1e3 / 2 ** 20, "M": 1e6 / 2 ** 20, "G": 1e9 / 2 ** 20}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(quantity))
    return float(m[1]) * units.get(m[2], 1 / 2 ** 20)


def test_worker_memory_limit_exceeds_its_engine_memory_ceiling(overlay, helps):
    c = container(overlay.get("Deployment", "darkroom-worker"))
    ceiling = literal(c, "DARKROOM_WORKER_MAX_MEMORY")
    if ceiling is None:
        ceiling = need_help(helps, "darkroom-worker").env["DARKROOM_WORKER_MAX_MEMORY"]
    limit = mib(c["resources"]["limits"]["memory"])
    # Headroom for the worker process and its originals in memory files.
    assert limit >= int(ceiling) + 256, f"limit {limit} MiB vs DARKROOM_WORKER_MAX_MEMORY {ceiling}"


def test_autoscalers_target_the_worker_deployment(overlay):
    scalers = overlay.of_kind("ScaledObject") + overlay.of_kind("HorizontalPodAutoscaler")
    for s in scalers:
        ref = s["spec"]["scaleTargetRef"]
        assert (ref.get("kind", "Deployment"), ref["name"]) == ("Deployment", "darkroom-worker")
        overlay.get("Deployment", "darkroom-worker")
    if scalers:
        assert "replicas" not in overlay.get("Deployment", "darkroom-worker")["spec"], \
            "an autoscaler owns the count: a replicas field would reset it at every apply"
    if overlay.name == "prod":
        (so,) = overlay.of_kind("ScaledObject")
        (trigger,) = so["spec"]["triggers"]
        assert so["spec"]["minReplicaCount"] == 0 and trigger["type"] == "postgresql"
        assert trigger["metadata"]["query"] == \
            "select visible + in_flight from queue_backlog where name = 'darkroom.requests'"
        # A busy worker holds concurrency + prefetch messages: N busy workers
        # must ask for N, not fewer.
        worker = container(overlay.get("Deployment", "darkroom-worker"))
        holds = int(literal(worker, "DARKROOM_WORKER_CONCURRENCY")) + int(literal(worker, "DARKROOM_WORKER_PREFETCH"))
        assert int(trigger["metadata"]["targetQueryValue"]) == holds


def test_every_darkroom_variable_set_is_one_the_binary_reads(overlay, helps):
    for w, c in darkroom_containers(overlay):
        binary = c["command"][0]
        known = need_help(helps, binary).env
        unknown = {n for n in env_of(c) if n.startswith("DARKROOM_") or n == "DATABASE_URL"} - set(known)
        assert not unknown, f"{w['metadata']['name']}: {binary} --help lists no {sorted(unknown)}"


@pytest.mark.parametrize("binary,subcommand", [("darkroom-web", "migrate"), ("darkroom-worker", "drain"),
                                               ("darkroom-queue", "serve")])
def test_subcommands_the_manifests_run_exist(helps, binary, subcommand):
    assert subcommand in need_help(helps, binary).subcommands
