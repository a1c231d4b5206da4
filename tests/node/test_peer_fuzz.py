"""The peer API under hostile input: random, truncated, bit-flipped, replayed,
non-member and oversized envelopes, and genuine envelopes around garbage. Every
answer is a refusal in the error shape or a sealed reply, never a server error,
and the node keeps serving."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cbor2
import pytest

from node.config import load_config
from node.peer import GOSSIP_PATH, PeerTransport, create_peer_app
from node.server import open_node
from protocol import codec
from protocol.keys import MemberKey
from protocol.sealed import Sealer

T0 = 1_700_000_000_000
COUNT = {"messages": 0}


def key_of(home: Path) -> MemberKey:
    return MemberKey.from_seed((home / "keys" / "member.key").read_bytes())


@pytest.fixture
async def peer(homes: dict[str, Path], clock: Any, aiohttp_client: Any) -> AsyncIterator[Any]:
    node = open_node(load_config(homes["a"], env={}), clock=clock)
    client = await aiohttp_client(
        create_peer_app(PeerTransport(node, clock=clock, timeout_s=5.0), run_transport=False)
    )
    yield client
    node.close()


async def post(client: Any, body: bytes) -> int:
    COUNT["messages"] += 1
    resp = await client.post(GOSSIP_PATH, data=body)
    raw = await resp.read()
    assert resp.status != 500, raw[:300]
    if resp.status >= 400:
        err = cbor2.loads(raw)["error"]
        assert isinstance(err["code"], str) and isinstance(err["message"], str)
    return int(resp.status)


def mutate(rng: random.Random, data: bytes) -> bytes:
    how = rng.randrange(4)
    if how == 0 and data:  # truncate
        return data[: rng.randrange(len(data))]
    if how == 1 and data:  # flip bits
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if how == 2:  # splice random bytes in
        i = rng.randrange(len(data) + 1)
        return data[:i] + rng.randbytes(rng.randint(1, 16)) + data[i:]
    return rng.randbytes(rng.randint(0, 300))


async def test_hostile_envelopes_never_get_a_server_error(
    peer: Any, homes: dict[str, Path], clock: Any
) -> None:
    rng = random.Random(14)
    a_id = key_of(homes["a"]).id
    member = Sealer(key_of(homes["b"]))
    stranger = Sealer(MemberKey.from_seed(bytes(range(32))))
    hello = codec.dumps({"t": "hello"})
    genuine = [member.seal(a_id, hello, T0 + i) for i in range(20)]
    statuses: dict[int, int] = {}
    for i in range(1500):
        kind = i % 5
        if kind == 0:
            body = mutate(rng, rng.choice(genuine))
        elif kind == 1:
            body = rng.choice(genuine)  # replayed (after the first time)
        elif kind == 2:
            body = stranger.seal(a_id, rng.randbytes(rng.randint(0, 64)), T0)  # non-member
        elif kind == 3:
            # a genuine envelope around garbage, or around a mutated CBOR message
            plain = rng.choice(
                [
                    rng.randbytes(rng.randint(0, 200)),
                    mutate(rng, hello),
                    codec.dumps({"t": rng.choice(["hello", "reply", "push", "ack", "x"])}),
                    cbor2.dumps({"t": "hello", "h": [[rng.randbytes(32), -1, b""]]}),
                ]
            )
            body = member.seal(a_id, plain, T0 + i)
        else:
            body = mutate(rng, member.seal(a_id, hello, T0 + i))
        s = await post(peer, body)
        statuses[s] = statuses.get(s, 0) + 1
    # oversized
    COUNT["messages"] += 1
    resp = await peer.post(GOSSIP_PATH, data=io.BytesIO(b"\x00" * (48 * 1024 * 1024)))
    assert resp.status == 413
    # and the node still answers: the member that sent all that is quarantined by now
    resp = await peer.post(GOSSIP_PATH, data=member.seal(a_id, hello, T0 + 99))
    assert resp.status == 403 and cbor2.loads(await resp.read())["error"]["code"] == "quarantined"
    assert set(statuses) - {200, 204, 400, 403, 409, 413, 421} == set(), statuses
