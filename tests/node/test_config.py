from __future__ import annotations

from pathlib import Path

import pytest

from node.config import SETTINGS, ConfigError, load_config, render_config


def test_defaults_and_rendered_file_round_trip(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(render_config({"node.name": "bank-a"}))
    c = load_config(tmp_path, env={})
    assert c["node.name"] == "bank-a"
    for s in SETTINGS:
        if s.name != "node.name":
            assert c[s.name] == s.default, s.name
    assert c.db_path == tmp_path / "riskmesh.db"


def test_env_overrides(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(render_config({}))
    c = load_config(
        tmp_path,
        env={
            "RISKMESH_API_LISTEN": "127.0.0.1:9999",
            "RISKMESH_GOSSIP_FANOUT": "5",
            "RISKMESH_INDEX_ERROR_RATE": "0.01",
        },
    )
    assert c["api.listen"] == "127.0.0.1:9999" and c["gossip.fanout"] == 5
    assert c["index.error_rate"] == 0.01


@pytest.mark.parametrize(
    ("text", "env", "names"),
    [
        ("[api]\nlisten = 'nowhere'\n", {}, "api.listen"),
        ("[api]\nmax_batch = 'many'\n", {}, "api.max_batch"),
        ("[api]\ncolour = 1\n", {}, "api.colour"),
        ("[node]\nregion = 'China'\n", {}, "node.region"),
        ("", {"RISKMESH_GOSSIP_FANOUT": "three"}, "gossip.fanout"),
        ("", {"RISKMESH_LOG_LEVEL": "loud"}, "log.level"),
        ("[api\n", {}, "TOML"),
    ],
)
def test_bad_setting_is_named(tmp_path: Path, text: str, env: dict[str, str], names: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path, env=env)
    assert names in str(e.value)


def test_missing_home(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="riskmesh init"):
        load_config(tmp_path / "nope", env={})


def test_every_setting_has_help() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert all(s.help.endswith(".") and len(s.help) > 15 for s in SETTINGS)


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for s in SETTINGS:
        assert f"`{s.name}`" in readme, s.name
