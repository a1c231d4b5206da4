"""The documents a newcomer reads stay true to the code."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from node.cli import main
from node.config import SETTINGS
from node.openapi import api_markdown

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def commands(group: click.Group, prefix: str = "riskmesh") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    ctx = click.Context(group)
    for name in sorted(group.list_commands(ctx)):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        path = f"{prefix} {name}"
        if isinstance(cmd, click.Group):
            out += commands(cmd, path)
        else:
            out.append((path, cmd))
    return out


ALL = commands(main)


def test_the_command_tree_is_walked() -> None:
    names = {path for path, _ in ALL}
    assert {
        "riskmesh demo",
        "riskmesh admin sign",
        "riskmesh charter genesis",
        "riskmesh sim run",
    } <= names


@pytest.mark.parametrize("path", [p for p, _ in ALL])
def test_every_command_is_documented_with_an_example(path: str) -> None:
    cmd = dict(ALL)[path]
    assert cmd.help and "Example:" in cmd.help, path
    text = "\n".join(d.read_text() for d in DOCS)
    assert path in text, f"`{path}` appears in no document ({', '.join(d.name for d in DOCS)})"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_in_the_operator_guide(setting: object) -> None:
    guide = (ROOT / "docs" / "operator-guide.md").read_text()
    assert f"`{setting.name}`" in guide  # type: ignore[attr-defined]
    assert f"`{setting.env}`" in guide  # type: ignore[attr-defined]


def test_api_reference_is_generated_from_the_openapi_document() -> None:
    on_disk = (ROOT / "docs" / "api.md").read_text()
    assert on_disk == api_markdown(), "run: python -m node.openapi > docs/api.md"


def test_readme_links_every_document() -> None:
    readme = (ROOT / "README.md").read_text()
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{doc.name}" in readme, doc.name
