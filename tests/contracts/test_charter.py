"""The charter model and its acceptance rule (DESIGN §7)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.charter import (
    Charter,
    EpochInfo,
    Member,
    check_genesis,
    check_successor,
    quorum_size,
)
from contracts.errors import CharterRejected, DecodeError

IDS = [bytes([i]) * 32 for i in range(1, 10)]
H1 = hashlib.blake2b(b"v1", digest_size=32).digest()


def member(i: int, admin: bool = True, status: str = "active") -> Member:
    roles = {"admin", "publisher", "reader"} if admin else {"publisher", "reader"}
    return Member(
        id=IDS[i], name=f"m{i}", endpoint=f"http://m{i}", roles=frozenset(roles), status=status
    )


def charter(
    version: int = 1,
    admins: int = 3,
    others: int = 1,
    quorum: str | int = "majority",
    prev: bytes | None = None,
    ts: int = 1000,
) -> Charter:
    members = tuple(member(i) for i in range(admins)) + tuple(
        member(admins + j, admin=False) for j in range(others)
    )
    return Charter(
        consortium="c",
        version=version,
        prev=prev if version > 1 else None,
        ts=ts,
        members=members,
        quorum=quorum,
    )


@pytest.mark.parametrize(
    ("quorum", "n", "need"),
    [
        ("majority", 1, 1),
        ("majority", 2, 2),
        ("majority", 3, 2),
        ("majority", 4, 3),
        ("majority", 5, 3),
        (1, 5, 1),
        (4, 5, 4),
    ],
)
def test_quorum_size(quorum: str | int, n: int, need: int) -> None:
    assert quorum_size(quorum, n) == need


def test_genesis_needs_all_admins() -> None:
    g = charter()
    check_genesis(g, IDS[:3])
    with pytest.raises(CharterRejected) as e:
        check_genesis(g, IDS[:2])
    assert e.value.reason == "genesis_unsigned"


def test_successor_quorum_met() -> None:
    v1 = charter()
    v2 = v1.evolve(prev=H1, ts=2000)
    check_successor(v1, H1, v2, IDS[:2])


def test_successor_quorum_not_met() -> None:
    v1 = charter()
    v2 = v1.evolve(prev=H1, ts=2000)
    with pytest.raises(CharterRejected) as e:
        check_successor(v1, H1, v2, IDS[:1])
    assert e.value.reason == "quorum_not_met"
    assert "needs 2" in e.value.message and "has 1" in e.value.message


def test_duplicate_signer_counted_once() -> None:
    v1 = charter()
    v2 = v1.evolve(prev=H1, ts=2000)
    with pytest.raises(CharterRejected) as e:
        check_successor(v1, H1, v2, [IDS[0], IDS[0], IDS[0]])
    assert e.value.reason == "quorum_not_met"


def test_non_admin_signatures_do_not_count() -> None:
    v1 = charter(admins=3, others=3)
    v2 = v1.evolve(prev=H1, ts=2000)
    with pytest.raises(CharterRejected):
        check_successor(v1, H1, v2, [IDS[0], IDS[3], IDS[4], IDS[5]])


def test_wrong_prev() -> None:
    v1 = charter()
    v2 = v1.evolve(prev=b"\x00" * 32, ts=2000)
    with pytest.raises(CharterRejected) as e:
        check_successor(v1, H1, v2, IDS[:3])
    assert e.value.reason == "wrong_prev"


def test_skipped_version() -> None:
    v1 = charter()
    v3 = charter(version=3, prev=H1, ts=2000)
    with pytest.raises(CharterRejected) as e:
        check_successor(v1, H1, v3, IDS[:3])
    assert e.value.reason == "wrong_version"


def test_same_version_again_refused() -> None:
    v2 = charter(version=2, prev=H1)
    with pytest.raises(CharterRejected) as e:
        check_successor(v2, H1, v2, IDS[:3])
    assert e.value.reason == "wrong_version"


def test_admin_set_change_needs_both_quorums() -> None:
    # v1: admins 0,1,2. v2: admins 0,3,4,5,6 (1 and 2 demoted, four new admins).
    v1 = charter()
    members = (
        member(0),
        member(1, admin=False),
        member(2, admin=False),
        member(3),
        member(4),
        member(5),
        member(6),
    )
    v2 = v1.evolve(prev=H1, ts=2000, members=members)
    # 2 of 3 old admins (0 and 1), but only 1 of 5 new admins: refused
    with pytest.raises(CharterRejected) as e:
        check_successor(v1, H1, v2, [IDS[0], IDS[1]])
    assert e.value.reason == "new_quorum_not_met"
    # new quorum met but old one not: refused
    with pytest.raises(CharterRejected) as e:
        check_successor(v1, H1, v2, [IDS[0], IDS[3], IDS[4], IDS[5]])
    assert e.value.reason == "quorum_not_met"
    # both met
    check_successor(v1, H1, v2, [IDS[0], IDS[1], IDS[3], IDS[4]])


def test_adding_a_plain_member_needs_only_the_old_quorum() -> None:
    v1 = charter(others=0)
    v2 = v1.evolve(prev=H1, ts=2000, members=(*v1.members, member(5, admin=False)))
    check_successor(v1, H1, v2, IDS[:2])


def test_removed_admin_cannot_count_in_the_new_quorum() -> None:
    v1 = charter(admins=3, others=0)
    members = (member(0), member(1), member(2, status="revoked"))
    v2 = v1.evolve(prev=H1, ts=2000, members=members)
    with pytest.raises(CharterRejected) as e:
        check_successor(v1, H1, v2, [IDS[0], IDS[2]])  # 2 of 3 old, but 1 of 2 new
    assert e.value.reason == "new_quorum_not_met"
    check_successor(v1, H1, v2, [IDS[0], IDS[1]])


def test_fixed_quorum() -> None:
    v1 = charter(admins=4, quorum=3)
    v2 = v1.evolve(prev=H1, ts=2000)
    with pytest.raises(CharterRejected):
        check_successor(v1, H1, v2, IDS[:2])
    check_successor(v1, H1, v2, IDS[:3])


def test_consortium_name_and_time_fixed() -> None:
    v1 = charter(ts=5000)
    with pytest.raises(CharterRejected) as e:
        check_successor(v1, H1, v1.evolve(prev=H1, consortium="other", ts=6000), IDS[:3])
    assert e.value.reason == "consortium_changed"
    with pytest.raises(CharterRejected) as e:
        check_successor(v1, H1, v1.evolve(prev=H1, ts=4000), IDS[:3])
    assert e.value.reason == "ts_backwards"


@pytest.mark.parametrize(
    "bad",
    [
        {"quorum": 0},
        {"quorum": 4},
        {"quorum": "most"},
        {"members": ()},
        {"members": (member(0), member(0))},
        {"epochs": ()},
        {"epochs": (EpochInfo(ep=2, since=0), EpochInfo(ep=1, since=0))},
        {"version": 0},
        {"prev": H1},
        {"consortium": ""},
    ],
)
def test_invalid_charters_refused(bad: dict[str, object]) -> None:
    base = {
        "consortium": "c",
        "version": 1,
        "prev": None,
        "ts": 0,
        "members": (member(0),),
        "quorum": "majority",
    }
    base.update(bad)
    with pytest.raises(DecodeError):
        Charter(**base)  # type: ignore[arg-type]


def test_map_round_trip() -> None:
    v1 = charter()
    assert Charter.from_map(v1.to_map()) == v1
    revoked = Member(id=IDS[8], name="gone", endpoint="", status="revoked", until_seq=12)
    v2 = v1.evolve(prev=H1, members=(*v1.members, revoked))
    assert Charter.from_map(v2.to_map()) == v2


@pytest.mark.parametrize("field", ["consortium", "version", "members", "policy", "epochs"])
def test_from_map_missing_field(field: str) -> None:
    m = charter().to_map()
    del m[field]
    with pytest.raises(DecodeError):
        Charter.from_map(m)


def test_from_map_unknown_field() -> None:
    m = charter().to_map()
    m["bonus"] = 1
    with pytest.raises(DecodeError):
        Charter.from_map(m)


@given(n_admins=st.integers(1, 9), signers=st.sets(st.integers(0, 8)))
def test_quorum_rule_matches_a_count(n_admins: int, signers: set[int]) -> None:
    v1 = charter(admins=n_admins, others=0)
    v2 = v1.evolve(prev=H1, ts=2000)
    valid = len({s for s in signers if s < n_admins}) > n_admins // 2
    try:
        check_successor(v1, H1, v2, [IDS[s] for s in signers])
        assert valid
    except CharterRejected:
        assert not valid
