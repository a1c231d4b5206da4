"""The gossip engine refuses any message it cannot take with GossipError — whatever
the CBOR inside a genuine envelope says — and nothing else ever escapes it."""

from __future__ import annotations

import contextlib
from typing import Any

import cbor2
from gossip_harness import Net
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_world import T0, make_world

from contracts.errors import GossipError

WORLD = make_world()

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.binary(max_size=40)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=3), c, max_size=5),
    max_leaves=16,
)
keys = st.sampled_from(
    ["t", "cv", "ch", "h", "hd", "dg", "en", "it", "m", "rs", "f", "g", "p", "x"]
)
messages = st.dictionaries(keys, values, max_size=8).map(
    lambda m: {**m, "t": m.get("t", "hello")}
) | st.fixed_dictionaries(
    {"t": st.sampled_from(["hello", "reply", "push", "ack"])},
    optional={
        "en": st.lists(st.binary(max_size=80), max_size=3),
        "hd": values,
        "it": values,
        "ch": values,
        "dg": st.binary(max_size=10),
    },
)


@settings(max_examples=400, deadline=None)
@given(message=messages, raw=st.booleans(), junk=st.binary(max_size=64))
def test_any_message_is_taken_or_refused_with_gossip_error(
    message: dict[str, Any], raw: bool, junk: bytes
) -> None:
    net = Net(WORLD, "AB")
    a, b = net["A"].engine, net["B"].engine
    data = junk if raw else cbor2.dumps(message)
    with contextlib.suppress(GossipError):
        a.receive(b.me, data, T0)
    # an exchange B started is answered too, whatever came before
    b.start_exchange(a.me, T0)
    for ev in b.events():
        if hasattr(ev, "data"):
            try:
                a.receive(b.me, ev.data, T0 + 1)
            except GossipError as e:
                assert e.reason == "quarantined", e.reason
