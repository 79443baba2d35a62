"""The Helm chart, the image and the GitOps files agree with the project, without a
test bed: CRDs are one source of truth, every value is documented, the image runs as
the user the chart expects. Rendering and installing are in tests/integration/."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

import ferry
from ferry import crdgen
from ferry.api import KINDS

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ferry"
CRDS = ROOT / "crds"
HEALTH = ROOT / "examples" / "gitops" / "argocd-cm-health.yaml"


def test_chart_crds_are_the_generated_crds_byte_for_byte() -> None:
    chart_files = sorted(p.name for p in (CHART / "files" / "crds").glob("*.yaml"))
    assert chart_files == sorted(crdgen.file_name(k) for k in KINDS)
    for name in chart_files:
        assert (CHART / "files" / "crds" / name).read_bytes() == (CRDS / name).read_bytes(), (
            f"charts/ferry/files/crds/{name} differs from crds/{name}: run `make crds`")


def test_versions_agree() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"] == ferry.__version__


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        out: list[str] = []
        for key, value in node.items():
            out.extend(_leaves(value, f"{prefix}.{key}" if prefix else key))
        return out
    return [prefix]


def test_every_value_is_documented_in_the_chart_readme() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = set(re.findall(r"^\| `([^`]+)` \|", (CHART / "README.md").read_text(), re.M))
    # Leaves, except inside maps whose contents are examples (resources, contexts), of
    # the operator and of the worker pods.
    examples = [f"{pod}{key}" for pod in ("", "podsExecutor.")
                for key in ("resources", "podSecurityContext", "securityContext")]
    wanted = {leaf for leaf in _leaves(values)
              if not leaf.startswith(tuple(f"{key}." for key in examples))}
    wanted |= set(examples)
    assert wanted - documented == set(), "undocumented values"
    assert documented - wanted == set(), "documented values that do not exist"


def test_schema_knows_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: dict[str, Any], sch: dict[str, Any], path: str) -> None:
        sch = schema["definitions"][sch["$ref"].rsplit("/", 1)[1]] if "$ref" in sch else sch
        if sch.get("additionalProperties") is False:
            unknown = set(node) - set(sch["properties"])
            assert not unknown, f"{path}: {unknown}"
        for key, value in node.items():
            sub = sch.get("properties", {}).get(key)
            if isinstance(value, dict) and sub is not None:
                walk(value, sub, f"{path}.{key}")

    walk(values, schema, "values")
    assert set(values) == set(schema["properties"])


def _stages(dockerfile: str) -> list[list[str]]:
    stages: list[list[str]] = []
    for line in re.sub(r"\\\n", " ", dockerfile).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_non_root_and_compiler_free() -> None:
    stages = _stages((ROOT / "Dockerfile").read_text())
    assert len(stages) >= 2, "a build stage and a final stage"
    final = stages[-1]
    assert "slim" in (ROOT / "Dockerfile").read_text().split("ARG PYTHON_IMAGE=")[1].split()[0]
    user = next(line.split()[1] for line in final if line.startswith("USER "))
    uid, _, gid = user.partition(":")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert int(uid) == values["podSecurityContext"]["runAsUser"] != 0
    assert int(gid) == values["podSecurityContext"]["runAsGroup"] != 0
    assert 'ENTRYPOINT ["ferry"]' in final and 'CMD ["run"]' in final
    final_text = "\n".join(final)
    for tool in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert tool not in final_text, f"the final stage must not run {tool}"
    assert any(line.startswith("COPY --from=build /opt/ferry") for line in final)
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and "!operator/" in ignored and "!pyproject.toml" in ignored


def test_argocd_health_checks_in_the_chart_readme_match_the_snippet() -> None:
    snippet = yaml.safe_load(HEALTH.read_text())
    readme = (CHART / "README.md").read_text()
    assert set(snippet["data"]) == {f"resource.customizations.health.ferry.dev_{k.kind}"
                                    for k in KINDS}
    # The README embeds the whole snippet file, verbatim.
    assert HEALTH.read_text().strip() in readme


def _lock() -> dict[str, str]:
    """requirements.lock as name → pinned version (every pin carries hashes)."""
    text = (ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+) \\$", text, re.M))
    assert text.count("==") == len(pins) and text.count("--hash=sha256:") >= len(pins)
    return pins


def test_the_image_installs_the_lock_which_pins_every_dependency_in_range() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {canonicalize_name(name): version for name, version in _lock().items()}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: re-run pip-compile"
        assert requirement.specifier.contains(pins[name]), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement.specifier}")
    # kopf brings aiohttp; Ferry itself imports none of it.
    assert "aiohttp" not in {canonicalize_name(Requirement(d).name)
                             for d in project["dependencies"]}
    assert "aiohttp" in pins
    build = next(s for s in _stages((ROOT / "Dockerfile").read_text())
                 if s[0].endswith(" AS build"))
    install = next(line for line in build if "requirements.lock" in line and "pip" in line)
    assert "--require-hashes" in install and "--only-binary=:all:" in install
    assert any("--no-deps --no-index /wheels/ferry_operator" in line for line in build)
    assert "!requirements.lock" in (ROOT / ".dockerignore").read_text().splitlines()
