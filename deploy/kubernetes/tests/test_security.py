"""Every pod is locked down the same way, no secret value is written in a
manifest, and the NetworkPolicies deny by default and open only what each
component uses."""

from __future__ import annotations

import ipaddress
import re

from conftest import KUBE, container, pod_spec

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|DATABASE_URL|CONNECTION", re.I)


def test_every_container_runs_unprivileged_on_a_read_only_root(overlay):
    for w in overlay.workloads():
        spec, name = pod_spec(w), w["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        tmp = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = {**spec["securityContext"], **c.get("securityContext", {})}
            where = f"{name}/{c['name']}"
            assert sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 10001, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp for m in c.get("volumeMounts", [])), \
                f"{where}: no emptyDir at /tmp"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(kind, {})), f"{where}: {kind}"


def test_no_secret_value_is_written_in_an_env_var(overlay):
    for w in overlay.workloads():
        for c in pod_spec(w)["containers"]:
            for e in c.get("env", []):
                if SECRET_NAME.search(e["name"]):
                    assert "value" not in e, f"{w['metadata']['name']}: {e['name']} has a literal value"


def test_committed_manifests_hold_no_secret_nor_placeholder():
    for path in sorted(KUBE.rglob("*")):
        if not path.is_file() or {"node_modules", "secrets", "tests"} & set(path.parts[len(KUBE.parts):]):
            continue
        if path.suffix not in (".yaml", ".yml", ".env", ""):
            continue
        text = path.read_text()
        assert not re.search(r"CHANGE_?ME|changeit|REPLACE_?ME|<password>", text, re.I), path
        assert not re.search(r"^kind: Secret\s*$", text, re.M), f"{path}: a Secret object in a manifest"
        assert not re.search(r"://[^/\s:@]+:(?!\.\.\.@)[^/\s@$]+@", text), f"{path}: credentials in a URL"


def test_dev_secrets_come_only_from_generated_files(rendered):
    for s in rendered["dev"].of_kind("Secret"):
        assert re.fullmatch(r"darkroom-[a-z0-9]+-[a-z0-9]{10}", s["metadata"]["name"]), s["metadata"]["name"]
    assert not rendered["prod"].of_kind("Secret"), "prod must render no Secret: the user creates them"
    assert (KUBE / "overlays/dev/.gitignore").read_text().count("/secrets/") == 1


def policies_selecting(overlay, labels: dict) -> list[dict]:
    def selects(selector):
        ok = selector.get("matchLabels", {}).items() <= labels.items()
        for expr in selector.get("matchExpressions", []):
            assert expr["operator"] == "In"
            ok = ok and labels.get(expr["key"]) in expr["values"]
        return ok
    return [p for p in overlay.of_kind("NetworkPolicy") if selects(p["spec"]["podSelector"])]


def test_everything_is_denied_unless_a_policy_allows_it(overlay):
    deny = overlay.get("NetworkPolicy", "darkroom-default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny


def allowed_ports(policies, direction):
    ports = set()
    for p in policies:
        for rule in p["spec"].get(direction, []):
            for port in rule.get("ports", [{"port": "any"}]):
                ports.add(port["port"])
    return ports


def test_workers_take_only_their_listener_and_reach_only_dns_postgres_and_s3(overlay):
    worker = overlay.get("Deployment", "darkroom-worker")["spec"]["template"]["metadata"]["labels"]
    policies = policies_selecting(overlay, worker)
    assert allowed_ports(policies, "ingress") == {9100}
    s3 = 9000 if overlay.name.startswith("dev") else 443
    assert allowed_ports(policies, "egress") == {53, 5432, s3}


def test_admin_listener_is_open_only_to_labelled_pods_of_the_namespace(overlay):
    web = overlay.get("Deployment", "darkroom-web")["spec"]["template"]["metadata"]["labels"]
    for p in policies_selecting(overlay, web):
        for rule in p["spec"].get("ingress", []):
            if any(port["port"] == 8081 for port in rule.get("ports", [])):
                assert rule.get("from") and all(set(f) == {"podSelector"} and f["podSelector"] for f in rule["from"])
    assert 8080 in allowed_ports(policies_selecting(overlay, web), "ingress")


def test_prod_reaches_its_datastores_by_documented_example_ranges_only(rendered):
    for name in ("prod", "prod-hpa"):
        for pname in ("darkroom-postgres-clients", "darkroom-s3-clients"):
            for rule in rendered[name].get("NetworkPolicy", pname)["spec"]["egress"]:
                for peer in rule["to"]:
                    net = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                    assert net.prefixlen >= 16, f"{pname}: {net} is too wide"
    # The shipped example ranges are RFC 5737's, which the README says to patch.
    text = (KUBE / "overlays/prod/network-policies.yaml").read_text()
    assert "192.0.2.0/24" in text and "0.0.0.0/0" not in text
