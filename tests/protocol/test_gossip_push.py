"""GossipEngine.push_now: an urgent report offered to every reachable peer at once
(DESIGN §14), through ordinary exchanges, rate-limited per peer."""

from __future__ import annotations

from gossip_harness import Net, make_consortium

from protocol.gossip import PeerFailed, Refused

GAP = 100


def phone(i: int) -> str:
    return f"+86138{i:08d}"


def holders(net: Net, name: str, seq: int) -> set[str]:
    log = net.id(name)
    return {n for n, node in net.nodes.items() if node.store.entry(log, seq) is not None}


def test_push_reaches_every_peer_in_one_exchange_each_without_a_round() -> None:
    w = make_consortium("ABCDEF")
    net = Net(w, "ABCDEF", fanout=2)
    net.run_until_converged()
    a = net.engine("A")
    rounds = {n: net.engine(n).round for n in net.nodes}
    e = net.publish("A", [w.add(phone(1), ts=net.now)])
    assert holders(net, "A", e.seq) == {"A"}

    pushed = a.push_now(net.now, GAP)

    assert sorted(net.by_id[p] for p in pushed) == list("BCDEF")
    net.flush()
    assert holders(net, "A", e.seq) == set("ABCDEF")
    # no round ran: the push is exchanges outside the rounds, not an early round
    assert {n: net.engine(n).round for n in net.nodes} == rounds
    hellos = [m for m in net.messages() if m.src == "A" and m.kind == "h"]
    assert len(hellos) >= 5


def test_a_burst_is_rate_limited_per_peer_and_the_rest_follows_on_the_timer() -> None:
    w = make_consortium("ABC")
    net = Net(w, "ABC")
    net.run_until_converged()
    a = net.engine("A")
    first = net.publish("A", [w.add(phone(1), ts=net.now)])
    assert len(a.push_now(net.now, GAP)) == 2
    net.flush()
    mark = len(net.sent)
    # within the gap: nobody is contacted now, but the timer says when they will be
    second = net.publish("A", [w.add(phone(2), ts=net.now)])
    net.now += 10
    assert a.push_now(net.now, GAP) == []
    assert a.push_now(net.now + 1, GAP) == []  # a second call within the gap changes nothing
    assert not [m for m in net.messages(mark) if m.src == "A"]
    assert a.get_timer() == net.now - 10 + GAP
    assert holders(net, "A", second.seq) == {"A"}
    # when it is due, handle_timer pushes (before the next round is due)
    net.now = a.get_timer()
    a.handle_timer(net.now)
    net.flush()
    assert holders(net, "A", first.seq) == holders(net, "A", second.seq) == set("ABC")
    assert a.get_timer() > net.now  # nothing more to push


def test_peers_backing_off_are_skipped() -> None:
    w = make_consortium("ABC")
    net = Net(w, "ABC")
    net.run_until_converged()
    a = net.engine("A")
    net.down.add("C")
    net.publish("A", [w.add(phone(1), ts=net.now)])
    a.push_now(net.now, GAP)
    net.flush()
    assert [f.peer for f in net["A"].of(PeerFailed)] == [net.id("C")]
    net.now += GAP
    e = net.publish("A", [w.add(phone(2), ts=net.now)])
    pushed = a.push_now(net.now, GAP)
    assert pushed == [net.id("B")]  # C backs off: not contacted
    net.flush()
    assert holders(net, "A", e.seq) == {"A", "B"}


def test_push_goes_through_the_same_checks() -> None:
    """A pushed entry travels in an ordinary exchange: the receiver checks it like any
    other (a corrupted signature is refused and counted against the sender)."""
    w = make_consortium("ABC")
    net = Net(w, "ABC")
    net.run_until_converged()
    e = net.publish("A", [w.add(phone(3), ts=net.now)])
    bad = e.raw[:-1] + bytes([e.raw[-1] ^ 1])  # the last byte of the signature

    def tamper(src: str, dst: str, data: bytes) -> bytes | None:
        if src == "A" and dst == "B" and e.raw in data:
            return data.replace(e.raw, bad)
        return data

    net.tamper = tamper
    net.engine("A").push_now(net.now, GAP)
    net.flush()
    assert holders(net, "A", e.seq) == {"A", "C"}
    [refused] = net["B"].of(Refused)
    assert refused.peer == net.id("A") and refused.reason == "bad_signature"
    assert net.engine("B").peer_stats()[net.id("A")].invalid == 1
