"""A node's home directory: init, join requests, genesis, charter signing and install."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from contracts.charter import Charter, EpochInfo, Member
from contracts.errors import CharterRejected, DecodeError, LocalProtocolError, SignatureError
from node.api import new_api_token
from node.config import ConfigError, load_config, render_config
from node.service import NodeCore
from node.store import SqliteStore
from protocol import codec
from protocol.charter_chain import CharterChain, decode_charter, sign_charter
from protocol.cose import add_signature, sign1, verify1, verify_multi
from protocol.grants import decode_grant, make_grant
from protocol.keys import MemberKey, member_id_text

__all__ = [
    "JoinRequest",
    "init_home",
    "install_charter_file",
    "make_genesis",
    "read_join_request",
    "sign_charter_file",
]


def _write_private(path: Path, data: bytes) -> None:
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
    store.add_api_key(token, "cli", ("query", "report", "admin"), int(time.time() * 1000))
    store.close()
    _write_private(config.token_path, token.encode())
    join = codec.dumps(
        {"v": 1, "id": key.id, "name": name, "endpoint": endpoint, "ts": int(time.time() * 1000)}
    )
    (home / "join-request.cbor").write_bytes(sign1(join, key))


class JoinRequest:
    def __init__(self, id: bytes, name: str, endpoint: str) -> None:
        self.id, self.name, self.endpoint = id, name, endpoint


def read_join_request(data: bytes) -> JoinRequest:
    """Check a join request's self-signature and shape."""
    try:
        s = verify1(data, max_bytes=4096)
        m = codec.loads(s.payload)
    except (DecodeError, SignatureError) as e:
        raise LocalProtocolError(f"not a valid join request: {e.message}") from None
    if (
        not isinstance(m, dict)
        or m.keys() != {"v", "id", "name", "endpoint", "ts"}
        or m["id"] != s.kid
        or not isinstance(m["name"], str)
        or not isinstance(m["endpoint"], str)
    ):
        raise LocalProtocolError("not a valid join request: wrong fields")
    return JoinRequest(m["id"], m["name"], m["endpoint"])


def _open(home: Path) -> tuple[Any, MemberKey, SqliteStore]:
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
            Member(
                id=key.id,
                name=config["node.name"] or "founder",
                endpoint=config["peer.endpoint"],
                roles=frozenset({"admin", "publisher", "reader"}),
            )
        ]
        for spec in member_specs:
            path, _, flag = spec.partition(":admin") if spec.endswith(":admin") else (spec, "", "")
            admin = spec.endswith(":admin")
            jr = read_join_request(Path(path).read_bytes())
            roles = {"publisher", "reader"} | ({"admin"} if admin else set())
            members.append(
                Member(id=jr.id, name=jr.name, endpoint=jr.endpoint, roles=frozenset(roles))
            )
            del flag
        charter = Charter(
            consortium=consortium,
            version=1,
            prev=None,
            ts=now,
            members=tuple(members),
            epochs=(EpochInfo(ep=1, since=now),),
        )
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
        core = NodeCore(store, key, region=config["node.region"])
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
