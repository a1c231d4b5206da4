"""A node's files are private to its user: the database and its WAL and SHM 0600,
keys/ 0700, the member key and the API token 0600."""

from __future__ import annotations

import stat
from pathlib import Path

from node.config import load_config
from node.home import init_home
from node.store import SqliteStore
from protocol.keys import MemberKey


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private(tmp_path: Path) -> None:
    home = tmp_path / "bank-a"
    init_home(home, name="bank-a", endpoint="http://127.0.0.1:1", api_listen="127.0.0.1:0")
    config = load_config(home, env={})
    key = MemberKey.from_seed(config.key_path.read_bytes())
    store = SqliteStore(config.db_path, key)
    with store.atomic(durable=True):
        store.put_epoch_key(1, bytes(32))  # a write: the WAL and SHM exist now
    assert mode(config.db_path) == 0o600
    for suffix in ("-wal", "-shm"):
        companion = Path(f"{config.db_path}{suffix}")
        assert companion.exists() and mode(companion) == 0o600, suffix
    store.close()
    assert mode(config.key_path.parent) == 0o700
    assert mode(config.key_path) == 0o600
    assert mode(config.token_path) == 0o600


def test_an_older_database_is_tightened_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    SqliteStore(db).close()
    db.chmod(0o644)
    SqliteStore(db).close()
    assert mode(db) == 0o600
