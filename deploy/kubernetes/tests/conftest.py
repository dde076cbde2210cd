"""Shared fixtures: every overlay rendered once per session.

The tree is copied to a temporary folder, the dev overlay's secrets are made
there with its own make-secrets (random values, never the repo's), and each
overlay is rendered with `kubectl kustomize`. `dev+queue-serve` is the dev
overlay with the optional components/queue-serve added (as the README says to
add it), so that component is rendered and checked too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
KUBE = HERE.parent  # deploy/kubernetes
REPO = KUBE.parent.parent
OVERLAYS = ["dev", "prod", "prod-hpa", "dev+queue-serve"]
BINARIES = ["darkroom-web", "darkroom-worker", "darkroom-queue"]


class Rendered:
    def __init__(self, name: str, path: Path, docs: list[dict]):
        self.name, self.path, self.docs = name, path, docs

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert found, f"{self.name}: no {kind} {name}"
        return found[0]

    def workloads(self) -> list[dict]:
        return [d for d in self.docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]

    def __repr__(self) -> str:
        return self.name


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict, name: str | None = None) -> dict:
    containers = pod_spec(workload)["containers"]
    if name is None:
        assert len(containers) == 1, f"{workload['metadata']['name']}: several containers"
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def env_of(c: dict) -> dict[str, dict]:
    return {e["name"]: e for e in c.get("env", [])}


def render(directory: Path) -> str:
    done = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="session")
def tree(tmp_path_factory) -> Path:
    """A copy of deploy/kubernetes with the dev secrets made, and the
    dev+queue-serve overlay."""
    root = tmp_path_factory.mktemp("kube") / "kubernetes"
    shutil.copytree(
        KUBE, root, ignore=shutil.ignore_patterns("node_modules", "secrets", "__pycache__", ".pytest_cache")
    )
    subprocess.run([str(root / "overlays/dev/make-secrets")], check=True, capture_output=True)
    # The dev overlay with the component added as its README says: listed
    # under `components:` in the overlay's own kustomization.yaml.
    extra = root / "overlays/dev+queue-serve"
    shutil.copytree(root / "overlays/dev", extra)
    with open(extra / "kustomization.yaml", "a") as f:
        f.write("components:\n  - ../../components/queue-serve\n")
    return root


@pytest.fixture(scope="session")
def rendered(tree) -> dict[str, Rendered]:
    out = {}
    for name in OVERLAYS:
        text = render(tree / "overlays" / name)
        path = tree / f"rendered-{name}.yaml"
        path.write_text(text)
        out[name] = Rendered(name, path, [d for d in yaml.safe_load_all(text) if d])
    return out


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request, rendered) -> Rendered:
    return rendered[request.param]


class Help:
    """What a built binary's --help says (clap): the environment variables it
    reads, their defaults, its subcommands."""

    ENV = re.compile(r"\[env: ([A-Z0-9_]+)=?[^\]]*\](?:\s*\[default: ([^\]]*)\])?")

    def __init__(self, binary: Path):
        self.binary = binary
        self.text = self._help([])
        self.subcommands = set(
            re.findall(r"^  ([a-z][a-z-]*)\s", self.text.split("Commands:")[1], re.M)
            if "Commands:" in self.text
            else []
        )
        self.env: dict[str, str | None] = {}
        texts = [self.text] + [self._help([s]) for s in sorted(self.subcommands - {"help"})]
        for text in texts:
            for name, default in self.ENV.findall(" ".join(text.split())):
                self.env.setdefault(name, default or None)

    def _help(self, args: list[str]) -> str:
        done = subprocess.run(
            [str(self.binary), *args, "--help"], capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout


@pytest.fixture(scope="session")
def helps() -> dict[str, Help]:
    """--help of each binary in target/debug; missing ones are left out."""
    found = {}
    for name in BINARIES:
        path = REPO / "target/debug" / name
        if path.exists():
            found[name] = Help(path)
    return found


def need_help(helps: dict, binary: str) -> "Help":
    if binary not in helps:
        pytest.skip(f"target/debug/{binary} is not built: its --help cannot be read (cargo build first)")
    return helps[binary]
