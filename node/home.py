"""A node's home directory: init, join requests, genesis, charter signing and install."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from contracts.errors import CharterRejected, ConfigError, DecodeError, SignatureError
from node.config import Config, load_config, render_config
from node.core import JoinRequest, Node, read_join_request
from node.keys import DEFAULT_KEY, SCOPES
from node.store import SqliteStore
from protocol import codec, governance
from protocol.charter_chain import CharterChain, decode_charter, sign_charter
from protocol.cose import add_signature, sign1, verify_multi
from protocol.grants import decode_grant, make_grant
from protocol.keys import MemberKey, member_id_text

__all__ = [
    "JoinRequest",
    "init_home",
    "install_charter_file",
    "make_genesis",
    "new_api_token",
    "read_join_request",
    "sign_charter_file",
]


def new_api_token() -> str:
    return "rm_" + secrets.token_urlsafe(32)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file, mode 0600."""
    _write_private(path, data)


def _write_private(path: Path, data: bytes) -> None:
    if path.parent.name == "keys":  # keys/ holds the member key: the node's user alone
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.chmod(0o700)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def init_home(
    home: Path,
    *,
    name: str,
    endpoint: str,
    api_listen: str = "127.0.0.1:7700",
    peer_listen: str = "127.0.0.1:7701",
    region: str = "CN",
) -> None:
    if (home / "config.toml").exists():
        raise ConfigError(f"{home} is already initialised")
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        render_config(
            {
                "node.name": name,
                "node.region": region,
                "api.listen": api_listen,
                "peer.listen": peer_listen,
                "peer.endpoint": endpoint,
            }
        )
    )
    try:
        config = load_config(home, env={})
    except ConfigError:
        (home / "config.toml").unlink()
        raise
    key = MemberKey.generate()
    _write_private(config.key_path, key.seed())
    store = SqliteStore(config.db_path, key)
    token = new_api_token()
    store.add_api_key(token, DEFAULT_KEY, SCOPES, int(time.time() * 1000))
    store.close()
    _write_private(config.token_path, token.encode())
    (home / "join-request.cbor").write_bytes(_join_request(key, name, endpoint))


def _open(home: Path) -> tuple[Config, MemberKey, SqliteStore]:
    config = load_config(home)
    try:
        key = MemberKey.from_seed(config.key_path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"no member key in {home} (run `riskmesh init`)") from None
    return config, key, SqliteStore(config.db_path, key)


def make_genesis(home: Path, consortium: str, member_specs: list[str], out: Path) -> str:
    config, key, store = _open(home)
    try:
        now = int(time.time() * 1000)
        members = [
            governance.member(
                key.id, config["node.name"] or "founder", config["peer.endpoint"], admin=True
            )
        ]
        for spec in member_specs:
            admin = spec.endswith(":admin")
            path = spec[: -len(":admin")] if admin else spec
            jr = read_join_request(Path(path).read_bytes())
            members.append(governance.member(jr.id, jr.name, jr.endpoint, admin=admin))
        charter = governance.genesis(consortium, members, now)
        raw = sign_charter(charter, [key])
        epoch_key = secrets.token_bytes(32)
        with store.atomic(durable=True):
            store.put_epoch_key(1, epoch_key)
            # epoch 1's key, sealed to each other founder; the grants travel by gossip
            for m in members[1:]:
                store.put_grant(decode_grant(make_grant(key, m.id, {1: epoch_key}, cv=1, ts=now)))
        out.write_bytes(raw)
        need = len(charter.admins()) - 1
        return f"genesis of {consortium!r} with {len(members)} member(s); " + (
            "fully signed" if need == 0 else f"{need} more admin signature(s) needed"
        )
    finally:
        store.close()


def sign_charter_file(home: Path, file: Path) -> int:
    _, key, store = _open(home)
    store.close()
    raw = file.read_bytes()
    try:
        signed = add_signature(raw, key)
    except (DecodeError, SignatureError) as e:
        raise CharterRejected("malformed", f"{file}: {e.message}") from None
    file.write_bytes(signed)
    return len(verify_multi(signed).signers)


def install_charter_file(home: Path, file: Path) -> str:
    config, key, store = _open(home)
    try:
        raw = file.read_bytes()
        cv = decode_charter(raw)
        core = Node(store, key, region=config["node.region"])
        if core.chain is not None and cv.charter.version == 1:
            if core.chain.anchor == cv.hash:
                return "charter version 1 (already installed)"
            raise CharterRejected("other_genesis", "a different genesis is already installed")
        core.install_charter(raw)
        if key.id not in {m.id for m in cv.charter.members}:
            note = " (this member is not listed in it)"
        else:
            note = ""
        assert isinstance(core.chain, CharterChain)
        return (
            f"charter version {cv.charter.version} of {cv.charter.consortium!r}, anchor "
            f"{core.chain.anchor.hex()[:16]}…, member {member_id_text(key.id)[:8]}{note}"
        )
    finally:
        store.close()


def backup_database(home: Path, out: Path) -> int:
    """A consistent online copy of the node's database at ``out`` (mode 0600), made with
    SQLite's backup API through a read-only connection; returns the pages copied."""
    import sqlite3

    config = load_config(home)
    if not config.db_path.exists():
        raise ConfigError(f"no database at {config.db_path} (run `riskmesh init`)")
    out = out.resolve()
    if out == config.db_path.resolve():
        raise ConfigError("the backup must not overwrite the live database")
    tmp = out.with_name(out.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    src = sqlite3.connect(f"file:{config.db_path}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
        pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    finally:
        dst.close()
        src.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, out)
    return pages


NEXT_KEY = "member.next.key"
OLD_KEY = "member.old.key"


def _join_request(key: MemberKey, name: str, endpoint: str) -> bytes:
    join = codec.dumps(
        {"v": 1, "id": key.id, "name": name, "endpoint": endpoint, "ts": int(time.time() * 1000)}
    )
    return sign1(join, key)


def prepare_rekey(home: Path) -> Path:
    """A new member key at ``keys/member.next.key`` and ``join-request.cbor`` signed by
    it (same name and endpoint), for a rekey-member proposal. Returns the join request."""
    config = load_config(home)
    next_path = config.key_path.with_name(NEXT_KEY)
    if next_path.exists():
        key = MemberKey.from_seed(next_path.read_bytes())  # again: the same key, not a new one
    else:
        key = MemberKey.generate()
        _write_private(next_path, key.seed())
    out = home / "join-request.cbor"
    out.write_bytes(_join_request(key, config["node.name"], config["peer.endpoint"]))
    return out


def read_next_key(config: Config) -> MemberKey | None:
    """The key `riskmesh rekey` prepared, if any."""
    path = config.key_path.with_name(NEXT_KEY)
    return MemberKey.from_seed(path.read_bytes()) if path.exists() else None


def adopt_next_key(config: Config) -> None:
    """Make the prepared key the member key (the old one kept as ``member.old.key``)."""
    keys = config.key_path.parent
    os.replace(config.key_path, keys / OLD_KEY)
    os.replace(keys / NEXT_KEY, config.key_path)
