"""The committed API reference is exactly what the models generate, it leaves no field
or CEL rule out, and every relative link in README.md and docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from ferry import cli, crdgen, docsgen
from ferry.api import KINDS

ROOT = Path(__file__).resolve().parents[2]
API_DOCS = ROOT / "docs" / "api"


@pytest.mark.parametrize("name", sorted(docsgen.pages()))
def test_committed_page_matches_generator(name: str) -> None:
    committed = (API_DOCS / name).read_text()
    assert committed == docsgen.pages()[name], "docs/api is stale: run `make docs` and commit"


def test_no_stray_files_in_docs_api() -> None:
    assert sorted(p.name for p in API_DOCS.iterdir()) == sorted(docsgen.pages())


def test_ferry_docs_command_writes_the_pages(tmp_path: Path) -> None:
    assert cli.main(["docs", "--out", str(tmp_path)]) == 0
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == docsgen.pages()


def _section(page: str, model: type[BaseModel]) -> str:
    """The part of a page under the heading that names ``model``."""
    match = re.search(rf"^#+ (?:(?:Spec|Status): )?{model.__name__}\n(.*?)(?=^#+ |\Z)", page,
                      re.MULTILINE | re.DOTALL)
    assert match, f"no section for {model.__name__}"
    return match.group(1)


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    """``model`` and every model its fields hold, walked from the Python annotations
    (not from the JSON schema the generator reads)."""
    seen: list[type[BaseModel]] = []

    def visit(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp not in seen:
                seen.append(tp)
                for f in tp.model_fields.values():
                    visit(f.annotation)
            return
        for arg in getattr(tp, "__args__", ()):
            visit(arg)

    visit(model)
    return seen


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_field_of_every_model_has_a_row(kind: Any) -> None:
    page = docsgen.render(kind)
    for model in _models(kind.spec) + _models(kind.status):
        section = _section(page, model)
        for name, f in model.model_fields.items():
            alias = f.alias or name
            row = re.search(rf"^\| `{alias}` \|.*\| (.*) \|$", section, re.MULTILINE)
            assert row, f"{kind.kind}: {model.__name__}.{alias} has no row"
            assert " ".join((f.description or "").split()).replace("|", "\\|") in row.group(1)


def _crd_rules(node: dict[str, Any]) -> list[str]:
    rules = [r["rule"] for r in node.get("x-kubernetes-validations", [])]
    for sub in (*node.get("properties", {}).values(), node.get("items"),
                node.get("additionalProperties")):
        if isinstance(sub, dict):
            rules += _crd_rules(sub)
    return rules


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_every_cel_rule_of_the_crd_is_documented(kind: Any) -> None:
    crd = yaml.safe_load(crdgen.render(kind))
    rules = _crd_rules(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    page = docsgen.render(kind)
    assert rules, f"{kind.kind} has no CEL rules: the walk below proves nothing"
    for rule in rules:
        assert f"`{rule}`" in page, rule


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    # Code (fenced or inline) may hold regular expressions that look like links.
    text = re.sub(r"```.*?```|`[^`\n]*`", "", doc.read_text(), flags=re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        assert dest.exists(), f"{doc.name}: link to missing {target}"
        if anchor and dest.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", dest.read_text(), re.MULTILINE)
            assert anchor in {_anchor(h) for h in headings}, f"{doc.name}: no #{anchor}"


def test_every_setting_is_documented_in_operations() -> None:
    from dataclasses import fields

    from ferry.settings import OperatorOptions

    operations = (ROOT / "docs" / "operations.md").read_text()
    missing = [f"FERRY_{f.name.upper()}" for f in fields(OperatorOptions)
               if f"`FERRY_{f.name.upper()}`" not in operations]
    assert missing == [], "document these in docs/operations.md"
