"""Every rendered object is valid: Kubernetes' own objects against the
OpenAPI schemas kubernetes-validate bundles (strict: unknown fields fail),
KEDA's against the validators @kubernetes-models/keda generates from KEDA's
API types (installed from npm, pinned in keda/package-lock.json)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

from conftest import HERE

# The oldest Kubernetes still maintained upstream and the newest the pinned
# kubernetes-validate bundles.
VERSIONS = ["1.33.0", "1.37.0"]
KEDA = "keda.sh/v1alpha1"
KEDA_TYPES = HERE / "keda/node_modules/@kubernetes-models/keda/keda.sh/v1alpha1"


def keda_objects(overlay):
    return [d for d in overlay.docs if d["apiVersion"] == KEDA]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_kubernetes_object_is_valid_in_strict_mode(overlay, version):
    failures = []
    for doc in overlay.docs:
        if doc["apiVersion"] == KEDA:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            failures.append(f"{doc['kind']} {doc['metadata']['name']}: {e.message} at {list(e.path)}")
        except kubernetes_validate.SchemaNotFoundError as e:
            failures.append(f"{doc['kind']} {doc['metadata']['name']}: no schema ({e})")
    assert not failures, "\n".join(failures)


def test_only_keda_objects_skip_the_kubernetes_schemas(rendered):
    kinds = {d["kind"] for r in rendered.values() for d in keda_objects(r)}
    assert kinds <= {"ScaledObject", "TriggerAuthentication"}, kinds
    assert keda_objects(rendered["prod"]), "prod renders no KEDA object"


def run_keda_validator(docs: list[dict]) -> list[dict]:
    done = subprocess.run(
        ["node", str(HERE / "keda/validate.mjs")],
        input=json.dumps(docs), capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_keda_objects_match_kedas_schema(overlay):
    docs = keda_objects(overlay)
    if not docs:
        pytest.skip(f"{overlay} has no KEDA object")
    bad = [r for r in run_keda_validator(docs) if r["errors"]]
    assert not bad, bad


def test_keda_validator_rejects_a_broken_scaled_object():
    """The validator is live: a number where KEDA wants a string, and a
    ScaledObject without a target, are refused."""
    broken = {
        "apiVersion": KEDA, "kind": "ScaledObject", "metadata": {"name": "x"},
        "spec": {"triggers": [{"type": "postgresql", "metadata": {"targetQueryValue": 4}}]},
    }
    (result,) = run_keda_validator([broken])
    text = " ".join(result["errors"])
    assert "scaleTargetRef" in text and "must be string" in text, result


# The generated validators let unknown fields through (as a CRD's structural
# schema prunes them silently); KEDA would ignore a misspelt field. So the
# field names are also checked against the TypeScript declarations the same
# package generates from KEDA's Go types.
PROPERTY = re.compile(r'^    "(\w+)"\??: (.*?);?$')
LOCAL = re.compile(r"IComGithubKedacoreKedaV2ApisKedaV1alpha1(\w+)")


def declared(type_name: str) -> dict[str, str]:
    text = (KEDA_TYPES / f"{type_name}.d.ts").read_text()
    alias = re.search(rf"export type I{type_name} = IComGithubKedacoreKedaV2ApisKedaV1alpha1(\w+);", text)
    if alias:
        return declared(alias[1])
    block = text.split(f"export interface I{type_name} ", 1)[1].split("\n}", 1)[0]
    return {m[1]: m[2] for line in block.splitlines() if (m := PROPERTY.match(line))}


def unknown_fields(value, type_name: str, path: str) -> list[str]:
    if not isinstance(value, dict):
        return []
    props = declared(type_name)
    found = []
    for key, child in value.items():
        if key not in props:
            found.append(f"{path}.{key}")
            continue
        local = LOCAL.search(props[key])
        if local and props[key].startswith("Array<"):
            for i, item in enumerate(child or []):
                found += unknown_fields(item, local[1], f"{path}.{key}[{i}]")
        elif local:
            found += unknown_fields(child, local[1], f"{path}.{key}")
    return found


def test_keda_objects_use_only_fields_keda_declares(overlay):
    docs = keda_objects(overlay)
    if not docs:
        pytest.skip(f"{overlay} has no KEDA object")
    for doc in docs:
        assert set(doc) <= {"apiVersion", "kind", "metadata", "spec"}, doc.keys()
        spec_type = f"{doc['kind']}Spec"
        assert unknown_fields(doc["spec"], spec_type, "spec") == [], doc["metadata"]["name"]


def test_keda_field_check_catches_a_misspelt_field():
    assert unknown_fields({"cooldownPeriods": 1, "triggers": [{"type": "x", "metadat": {}}]},
                          "ScaledObjectSpec", "spec") == ["spec.cooldownPeriods", "spec.triggers[0].metadat"]


def test_keda_scale_down_behavior_is_a_valid_hpa_behavior(overlay):
    """advanced.horizontalPodAutoscalerConfig.behavior is Kubernetes' own
    type, which KEDA passes to the HPA it makes: checked strictly there."""
    for doc in keda_objects(overlay):
        behavior = doc["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
        if behavior is None:
            continue
        hpa = {
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 1, "behavior": behavior},
        }
        kubernetes_validate.validate(hpa, VERSIONS[-1], strict=True)
