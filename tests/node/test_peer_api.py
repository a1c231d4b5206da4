"""The peer API: sealed gossip between two members' nodes, and every refusal."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest

from contracts.errors import NotReady
from node.api import NODE
from node.config import load_config
from node.core import GossipSettings, Node
from node.home import init_home
from node.peer import GOSSIP_PATH, PeerTransport, create_peer_app
from node.server import create_app
from node.store import SqliteStore
from protocol.gossip import KeysGranted, Send
from protocol.keys import MemberId, MemberKey
from protocol.sealed import Sealer

T0 = 1_700_000_000_000  # the clock fixture's start (tests/node/conftest.py)


def key_of(home: Path) -> MemberKey:
    return MemberKey.from_seed((home / "keys" / "member.key").read_bytes())


class Side:
    """Member b's node core and gossip service, driven by hand."""

    def __init__(self, home: Path, clock: Any) -> None:
        self.key = key_of(home)
        store = SqliteStore(load_config(home, env={}).db_path, self.key)
        self.core = Node(store, self.key, now=clock())
        engine = self.core.engine
        assert engine is not None
        self.engine = engine
        self.sealer = Sealer(self.key)


@pytest.fixture
def side_b(homes: dict[str, Path], clock: Any) -> Iterator[Side]:
    side = Side(homes["b"], clock)
    yield side
    side.core.store.close()


@pytest.fixture
async def peer_client(homes: dict[str, Path], clock: Any, aiohttp_client: Any) -> Any:
    app = create_app(load_config(homes["a"], env={}), clock=clock, jobs=False)
    transport = PeerTransport(app[NODE], clock=clock, timeout_s=5.0)
    client = await aiohttp_client(create_peer_app(transport, run_transport=False))
    client.core = app[NODE]
    yield client
    client.core.close()


def sends(engine: Any) -> list[Send]:
    return [e for e in engine.events() if isinstance(e, Send)]


async def test_a_member_exchanges_and_receives_its_grant(
    peer_client: Any, side_b: Side, homes: dict[str, Path], clock: Any
) -> None:
    a_id = key_of(homes["a"]).id
    assert not side_b.core.epoch_keys  # b has no key until the founder's grant arrives
    side_b.engine.start_exchange(a_id, clock())
    [hello] = sends(side_b.engine)
    resp = await peer_client.post(GOSSIP_PATH, data=side_b.sealer.seal(a_id, hello.data, T0))
    assert resp.status == 200, await resp.read()
    sealed = await resp.read()
    reply = side_b.sealer.open_response(a_id, sealed, T0, 300_000)
    push = side_b.engine.receive(a_id, reply, T0)
    granted = [e for e in side_b.engine.events() if isinstance(e, KeysGranted)]
    assert len(granted) == 1 and list(granted[0].keys) == [1]
    assert granted[0].keys[1] == peer_client.core.epoch_keys[1]
    assert "keys" not in repr(granted[0])
    # b confirms; a acknowledges
    assert push is not None
    resp = await peer_client.post(GOSSIP_PATH, data=side_b.sealer.seal(a_id, push, T0))
    assert resp.status == 200
    ack = side_b.sealer.open_response(a_id, await resp.read(), T0, 300_000)
    assert side_b.engine.receive(a_id, ack, T0) is None


async def error_of(resp: Any) -> dict[str, Any]:
    body = cbor2.loads(await resp.read())
    return body["error"]  # type: ignore[no-any-return]


async def test_a_non_member_gets_nothing_but_an_error(
    peer_client: Any, homes: dict[str, Path]
) -> None:
    a_id = key_of(homes["a"]).id
    outsider = MemberKey.from_seed(bytes(range(32)))
    resp = await peer_client.post(GOSSIP_PATH, data=Sealer(outsider).seal(a_id, b"hello", T0))
    assert resp.status == 403
    assert (await error_of(resp))["code"] == "not_member"


async def test_refusals_are_specific(
    peer_client: Any, side_b: Side, homes: dict[str, Path]
) -> None:
    a_id = key_of(homes["a"]).id
    # not an envelope at all
    resp = await peer_client.post(GOSSIP_PATH, data=b"\xa1\x61")
    assert resp.status == 400 and (await error_of(resp))["code"] == "decode"
    # sealed to someone else
    resp = await peer_client.post(GOSSIP_PATH, data=side_b.sealer.seal(side_b.key.id, b"x", T0))
    assert (await error_of(resp))["code"] == "wrong_recipient"
    # outside the skew window
    resp = await peer_client.post(GOSSIP_PATH, data=side_b.sealer.seal(a_id, b"x", T0 - 3_600_000))
    assert resp.status == 400 and (await error_of(resp))["code"] == "skew"
    # a genuine envelope whose content is not a gossip message
    body = side_b.sealer.seal(a_id, b"\x00\x01", T0)
    resp = await peer_client.post(GOSSIP_PATH, data=body)
    assert resp.status == 400 and (await error_of(resp))["code"] == "decode"
    # the same envelope again is a replay
    resp = await peer_client.post(GOSSIP_PATH, data=body)
    assert resp.status == 409 and (await error_of(resp))["code"] == "replay"
    # too large for the peer API
    resp = await peer_client.post(GOSSIP_PATH, data=io.BytesIO(b"\x00" * (64 * 1024 * 1024)))
    assert resp.status == 413


async def test_a_node_without_charter_is_not_serving(
    tmp_path: Path, clock: Any, aiohttp_client: Any
) -> None:
    home = tmp_path / "lonely"
    init_home(home, name="lonely", endpoint="http://127.0.0.1:3", api_listen="127.0.0.1:0")
    app = create_app(load_config(home, env={}), clock=clock, jobs=False)
    transport = PeerTransport(app[NODE], clock=clock, timeout_s=1.0)
    client = await aiohttp_client(create_peer_app(transport))
    try:
        sealed = Sealer(MemberKey.from_seed(bytes(32))).seal(key_of(home).id, b"x", T0)
        resp = await client.post(GOSSIP_PATH, data=sealed)
        assert resp.status == 503 and (await error_of(resp))["code"] == "not_ready"
    finally:
        app[NODE].close()


def test_a_node_is_quiet_without_a_charter(tmp_path: Path, clock: Any) -> None:
    home = tmp_path / "lonely"
    init_home(home, name="lonely", endpoint="http://127.0.0.1:3", api_listen="127.0.0.1:0")
    key = key_of(home)
    core = Node(SqliteStore(load_config(home, env={}).db_path, key), key, now=clock())
    try:
        assert core.engine is None and core.timer() is None
        assert core.peer_status(clock()) == []
        core.handle_timer(clock())
        assert core.take_sends() == []
    finally:
        core.close()


def test_an_equivocators_reports_drop_out_of_verdicts(homes: dict[str, Path], clock: Any) -> None:
    from contracts.policy import DAY_MS
    from protocol.entries import AddOp, build_entry

    key_a = key_of(homes["a"])
    core = Node(SqliteStore(load_config(homes["a"], env={}).db_path, key_a), key_a)
    try:
        b = key_of(homes["b"])
        tok = core.epoch_keys.tokenizer(1).token("phone", "+8613800138000")
        other = core.epoch_keys.tokenizer(1).token("phone", "+8613800138001")
        now = clock()
        assert core.chain is not None
        cv = core.chain.current.version

        def entry(t: bytes) -> bytes:
            op = AddOp(t, "phone", 1, "telecom_fraud", 3, now + DAY_MS)
            return build_entry(b, seq=1, prev=None, ts=now, cv=cv, ops=[op]).raw

        item = [{"kind": "phone", "value": "+8613800138000"}]
        assert core.accept_entry(entry(tok), now) == "accepted"
        core.rebuild_index(now)
        assert core.query(item, now)[0]["match"] is True
        # b signs a second, different entry 1: a fork; its feed is frozen
        assert core.accept_entry(entry(other), now).startswith("fork")
        assert b.id in core.frozen
        assert core.query(item, now)[0]["match"] is False
    finally:
        core.store.close()


def open_node(home: Path, clock: Any) -> Node:
    key = key_of(home)
    return Node(SqliteStore(load_config(home, env={}).db_path, key), key, now=clock())


REPORT = [{"kind": "phone", "value": "+8613800138000", "category": "telecom_fraud"}]


def test_a_node_holds_its_reports_until_its_first_exchange(
    homes: dict[str, Path], clock: Any
) -> None:
    a, b = open_node(homes["a"], clock), open_node(homes["b"], clock)
    try:
        assert a.syncing and a.status(clock())["syncing"] is True
        with pytest.raises(NotReady) as e:
            a.report(REPORT, clock())
        assert e.value.reason == "syncing" and "exchange with a peer" in e.value.message
        assert a.store.head(MemberId(a.key.id)) is None  # nothing signed
        b.start_exchange(MemberId(a.key.id), clock())
        converse(b, a, clock())
        assert not a.syncing and a.report(REPORT, clock()).entry.seq == 1
    finally:
        a.close()
        b.close()


def test_a_node_shown_its_own_later_entry_refuses_to_sign(
    homes: dict[str, Path], clock: Any
) -> None:
    from contracts.policy import DAY_MS
    from protocol.entries import AddOp, build_entry

    a, b = open_node(homes["a"], clock), open_node(homes["b"], clock)
    try:
        b.start_exchange(MemberId(a.key.id), clock())
        converse(b, a, clock())
        assert not a.syncing
        # entries 1..3 of a's own feed, signed by a's key (as a backup restored to an
        # older state would lack them); only entry 3 reaches the node at first
        now = clock()
        tk = a.epoch_keys.tokenizer(1)
        entries, prev = [], None
        for seq in (1, 2, 3):
            op = AddOp(
                tk.token("phone", f"+86138001380{seq:02d}"), "phone", 1, "phishing", 3, now + DAY_MS
            )
            entry = build_entry(a.key, seq=seq, prev=prev, ts=now, cv=1, ops=[op])
            entries.append(entry)
            prev = entry.hash
        assert a.accept_entry(entries[2].raw, now).startswith("held")
        assert a.claimed_own_head() == 3
        with pytest.raises(NotReady) as e:
            a.report(REPORT, now)
        assert "catching up" in e.value.message
        assert a.store.head(MemberId(a.key.id)) is None  # nothing signed
        for entry in entries[:2]:
            assert a.accept_entry(entry.raw, now) == "accepted"
        assert a.store.head(MemberId(a.key.id)).seq == 3  # type: ignore[union-attr]
        assert a.report(REPORT, now).entry.seq == 4
    finally:
        a.close()
        b.close()


def test_an_unproven_claim_on_our_feed_changes_nothing_and_counts_against_the_liar(
    homes: dict[str, Path], clock: Any
) -> None:
    a_id = key_of(homes["a"]).id
    # b's node says it holds a's feed up to seq 1 000 000, and holds no entry of it
    b_store = SqliteStore(load_config(homes["b"], env={}).db_path, key_of(homes["b"]))
    b_store.conn.execute(
        "INSERT INTO feeds (log, seq, hash, ts, cv) VALUES (?, ?, ?, ?, ?)",
        (a_id, 1_000_000, bytes(32), clock(), 1),
    )
    b_store.conn.commit()
    b_store.close()
    a, b = open_node(homes["a"], clock), open_node(homes["b"], clock)
    try:
        for _ in range(3):
            b.start_exchange(MemberId(a_id), clock())
            converse(b, a, clock())
        assert a.claimed_own_head() == 0
        assert a.report(REPORT, clock()).entry.seq == 1  # not held back
        [row] = [p for p in a.peer_status(clock()) if p["name"] == "b"]
        assert row["invalid_reasons"].get("unproven_claim", 0) >= 1
    finally:
        a.close()
        b.close()


def converse(initiator: Node, responder: Node, now: int) -> int:
    """Run ``initiator``'s pending exchanges with ``responder`` in process; messages moved."""
    moved = 0
    for send in initiator.take_sends():
        assert send.peer == responder.key.id
        msg: bytes | None = send.data
        while msg is not None:
            reply = responder.receive(MemberId(initiator.key.id), msg, now)
            moved += 1
            if reply is None:
                break
            msg = initiator.receive(MemberId(responder.key.id), reply, now)
            moved += 1
    return moved


async def test_index_counts_each_token_once_published_or_replicated(
    homes: dict[str, Path], clock: Any, aiohttp_client: Any
) -> None:
    apps = {n: create_app(load_config(homes[n], env={}), clock=clock, jobs=False) for n in "ab"}
    clients = {n: await aiohttp_client(app) for n, app in apps.items()}
    tokens = {n: (homes[n] / "api-token").read_text().strip() for n in "ab"}
    a, b = apps["a"][NODE], apps["b"][NODE]
    b.start_exchange(MemberId(a.key.id), clock())
    converse(b, a, clock())  # a's first exchange: it takes reports from now on
    n = 250
    items = [
        {"kind": "device", "value": f"fp:dev-{i}", "category": "device_risk"} for i in range(n)
    ]
    for i in range(0, n, 100):
        r = await clients["a"].post(
            "/v1/reports",
            json={"items": items[i : i + 100]},
            headers={"Authorization": f"Bearer {tokens['a']}"},
        )
        assert r.status == 201, await r.text()

    async def count(name: str) -> int:
        r = await clients[name].get(
            "/v1/status", headers={"Authorization": f"Bearer {tokens[name]}"}
        )
        assert r.status == 200
        return int((await r.json())["index"]["count"])

    assert await count("a") == n
    b.start_exchange(MemberId(a.key.id), clock())
    assert converse(b, a, clock()) > 0
    assert b.store.head(MemberId(a.key.id)) is not None
    assert b.store.head(MemberId(a.key.id)).seq == 3  # type: ignore[union-attr]
    assert await count("b") == n
    # a second exchange moves nothing new and counts nothing twice
    b.start_exchange(MemberId(a.key.id), clock())
    converse(b, a, clock())
    assert await count("a") == n and await count("b") == n


async def test_a_removed_members_node_learns_it_from_the_refusal(
    homes: dict[str, Path], clock: Any, aiohttp_client: Any
) -> None:
    from node.peer import _PeerAnswered

    a, b = open_node(homes["a"], clock), open_node(homes["b"], clock)
    try:
        b.start_exchange(MemberId(a.key.id), clock())
        converse(b, a, clock())  # b holds its key grant and is synced
        assert b.report(REPORT, clock()).entry.seq == 1
        p = a.propose_remove_member("b", clock())  # a is the only admin: final at once
        assert a.proposal_view(p)["status"] == "final" and not b.revoked
        ta = PeerTransport(a, clock=clock, timeout_s=5.0)
        tb = PeerTransport(b, clock=clock, timeout_s=5.0)
        client = await aiohttp_client(create_peer_app(ta, run_transport=False))
        b.start_exchange(MemberId(a.key.id), clock())
        send = b.take_sends()[-1]  # the hello of the exchange just started
        resp = await client.post(GOSSIP_PATH, data=tb.sealer.seal(a.key.id, send.data, clock()))
        assert resp.status == 403
        body = await resp.read()
        assert cbor2.loads(body)["error"]["code"] == "not_member"
        # b's transport learns the signed versions that removed it
        tb._refused_by(MemberId(a.key.id), _PeerAnswered(403, body))
        assert b.revoked and b.status(clock())["member"]["status"] == "revoked"
        with pytest.raises(NotReady) as e:
            b.report(REPORT, clock())
        assert e.value.reason == "revoked"
        # a stranger claiming to be b (its Box does not open) learns nothing
        stranger = Sealer(MemberKey.from_seed(bytes(range(32))))
        forged = stranger.seal(a.key.id, b"x", clock())
        forged_b = cbor2.loads(forged)
        forged_b["from"] = b.key.id
        resp = await client.post(GOSSIP_PATH, data=cbor2.dumps(forged_b))
        assert resp.status == 403 and "charters" not in cbor2.loads(await resp.read())
    finally:
        a.close()
        b.close()


def test_a_catching_up_node_tells_its_rate_and_time_left(
    homes: dict[str, Path], clock: Any
) -> None:
    """``status.catch_up`` (and ``riskmesh status``): entries behind, the rate over the
    last minute and the time left at it, while a node replicates a long feed in small
    frames; nothing once it has caught up."""

    def small_frames(name: str) -> Node:
        key = key_of(homes[name])
        db = load_config(homes[name], env={}).db_path
        return Node(SqliteStore(db, key), key, now=clock(), gossip=GossipSettings(frame_bytes=4096))

    a, b = small_frames("a"), small_frames("b")
    try:
        b.start_exchange(MemberId(a.key.id), clock())
        converse(b, a, clock())
        for i in range(60):
            item = {"kind": "device", "value": f"fp:cu-{i}", "category": "device_risk"}
            a.report([item] * 1, clock())
        assert b.catch_up(clock()) is None  # it does not know yet
        seen: list[dict[str, Any]] = []
        now = clock()

        def head() -> int:
            h = b.store.head(MemberId(a.key.id))
            return 0 if h is None else h.seq

        for _ in range(200):  # exchanges, one frame each way, until caught up
            if head() == 60:
                break
            b.start_exchange(MemberId(a.key.id), now)
            for send in b.take_sends():
                msg: bytes | None = send.data
                while msg is not None:
                    reply = a.receive(MemberId(b.key.id), msg, now)
                    if reply is None:
                        break
                    now += 100  # each round trip takes 100 ms here
                    msg = b.receive(MemberId(a.key.id), reply, now)
                    progress = b.catch_up(now)
                    if progress is not None:
                        seen.append(progress)
        assert b.store.head(MemberId(a.key.id)).seq == 60  # type: ignore[union-attr]
        assert len(seen) >= 2, "several frames, each a step of progress"
        last = seen[-1]
        assert 0 < last["entries_behind"] < 60
        assert last["entries_per_s"] > 0 and last["ops_per_s"] == last["entries_per_s"]
        assert last["eta_s"] == round(last["entries_behind"] / last["entries_per_s"])
        assert b.catch_up(now) is None and b.status(now)["catch_up"] is None
    finally:
        a.close()
        b.close()


def test_a_new_base_files_index_keeps_what_was_added_while_it_was_built(
    homes: dict[str, Path], clock: Any
) -> None:
    """The Bloom index's bulk is the base file's filter, built with the file in a process
    of its own (node/server.py): a report made after the build started, and not in the
    file, is still in the index once the file replaces the old one; the filters the
    file covers are dropped, so the writer's own filters stay small."""
    from node.summaries import BaseFile, build_base_file

    key = key_of(homes["a"])
    db = load_config(homes["a"], env={}).db_path
    a = Node(SqliteStore(db, key), key, now=clock(), summary_dir=homes["a"] / "summaries")
    a._synced = True
    tk = a.epoch_keys.tokenizer(1)
    try:
        a.report([{"kind": "device", "value": "fp:before", "category": "device_risk"}], clock())
        path, seq = a.next_base_path(clock())  # the build starts: the adds so far are marked
        build_base_file(str(a.store.path), str(path), clock(), seq, error_rate=a.error_rate)
        a.report([{"kind": "device", "value": "fp:meanwhile", "category": "device_risk"}], clock())
        base = BaseFile.open(path)
        assert base.bloom is not None and tk.token("device", "fp:meanwhile") not in base.bloom
        a.install_base(base)
        assert a.index.base is base.bloom and a.index.older == []
        assert tk.token("device", "fp:before") in a.index  # from the file's filter
        assert tk.token("device", "fp:meanwhile") in a.index  # from the adds since
        assert a.index.recent.count == 1
        assert a.index.own_memory_bytes() < a.index.memory_bytes()
        # and a verdict that reads the index (alerts, the retro-hunt of a watch) finds both
        found = a.counted_reports(
            [tk.token("device", "fp:before"), tk.token("device", "fp:meanwhile")], clock()
        )
        assert len(found) == 2
    finally:
        a.close()
