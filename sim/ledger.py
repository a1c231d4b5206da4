"""What was really published, and what every honest node should therefore answer.

The simulator writes down every entry it has a member publish (:class:`Ledger`)
and, for every node, when that node first accepted it (through a listener on
the node's :class:`~protocol.feeds.Feeds`, so "accepted" means appended after
every check). From the ledger it derives the ground truth of each identifier —
which members report it, in which categories, how severe, until when — and
compares the answers the nodes give against it (:class:`Verdict`).

Identifiers are synthetic but real: raw values of each kind are put into
canonical form by :func:`contracts.indicators.canonical` and turned into
tokens with the consortium's epoch keys, as a node does for a report. An
identifier has one token per key epoch; after a key rotation its reporters
republish it under the new epoch, and a node answers a query from every live
epoch's token together (as ``node`` does), so the ground truth is kept per
identifier, over all its tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from contracts.indicators import canonical
from protocol.entries import AddOp, AppealDecidedOp, AppealOp, DisputeOp, Op, RetractOp, SeenOp
from protocol.store import IndicatorState
from protocol.tokens import EpochKeys, Tokenizer

__all__ = [
    "Extras",
    "Holder",
    "Ledger",
    "Published",
    "Verdict",
    "is_report_op",
    "synthetic_value",
    "verdict_of",
]

#: An op that is not about a report: a sighting, a dispute, an appeal, or the
#: retraction of one of them (``RetractOp.of`` set)
SignalOp = SeenOp | DisputeOp | AppealOp | RetractOp


def is_report_op(op: Op) -> bool:
    """A report (``add``) or its retraction (``retract`` without ``of``): what verdicts
    are made of. A retract naming ``of`` withdraws a sighting, dispute or appeal."""
    return isinstance(op, AddOp) or (isinstance(op, RetractOp) and op.of is None)


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def synthetic_value(kind: str, n: int) -> str:
    """The ``n``-th raw identifier of ``kind``, as a member's platform would report it.

    None is on the shipped warning list (``contracts.warninglists``): no e-mail at a
    reserved domain, no private or documentation address, so a node takes every one.
    """
    if kind == "phone":
        return f"+86 139 {n // 10_000 % 10_000:04d} {n % 10_000:04d}"
    if kind == "email":
        return f"User{n}@Corp-Mail.CN"
    if kind == "device":
        return f"fp:DEV-{n:08X}"
    if kind == "account":
        return f"alipay:{n:010d}"
    if kind == "ip":  # 36.0.0.0/8: public (APNIC)
        return f"36.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    if kind == "merchant":
        return f"pay:shop-{n}"
    if kind == "bank_card":
        body = f"622202{n:09d}"
        return body + _luhn_digit(body)
    if kind == "id_number":
        return f"US:{n:09d}"
    raise ValueError(f"no synthetic identifiers for kind {kind!r}")


class Verdict(NamedTuple):
    """The comparable part of a query answer (DESIGN §11): who, what, how bad, until when."""

    reporters: tuple[bytes, ...]
    categories: tuple[str, ...]
    max_severity: int
    expires: int


def verdict_of(states: Iterable[IndicatorState], now: int) -> Verdict | None:
    """The verdict over live indicator states, as the node's query computes it (None: no match)."""
    live = [s for s in states if s.live(now)]
    if not live:
        return None
    return Verdict(
        reporters=tuple(sorted({s.author for s in live})),
        categories=tuple(sorted({s.cat for s in live})),
        max_severity=max(s.sev for s in live),
        expires=max(s.exp for s in live),
    )


class Extras(NamedTuple):
    """What a matching verdict adds (DESIGN §15) that the simulator compares: distinct
    members with a live sighting, with a live dispute, and whether an appeal is open."""

    sightings: int
    disputes: int
    under_appeal: bool


@dataclass(slots=True, eq=False)
class Published:
    """One entry a member published (or, for an equivocator, its twin)."""

    hash: bytes
    author: int  # node index
    seq: int
    t: float  # virtual ms
    ops: tuple[Op, ...]
    #: part of the ground truth and of the delivery figures (False: an equivocator's
    #: entries and twins, entries past a removed member's until_seq, entries lost)
    valid: bool = True
    twin: bool = False
    lost: bool = False  # lost with its author's state before any other node held it
    republished: bool = False  # live reports again under a new key epoch
    held: dict[int, float] = field(default_factory=dict)  # node index -> first accepted


class Holder(Protocol):
    """What the ledger tracks of a node: the entries it holds, and how many are valid."""

    idx: int
    holds: set[bytes]
    held_valid: int


class Ledger:
    """Published entries, identifiers and their tokens, and the ground truth."""

    def __init__(self, keys: EpochKeys, member_ids: list[bytes], region: str = "CN") -> None:
        self.keys = keys
        self._tokenizers: dict[int, Tokenizer] = {}
        self._ids = member_ids  # node index -> member id
        self.region = region
        self.entries: list[Published] = []
        self.by_hash: dict[bytes, Published] = {}
        #: identifier -> the valid reports and their retractions on any of its tokens:
        #: (author, seq, op)
        self.by_value: dict[int, list[tuple[int, int, AddOp | RetractOp]]] = {}
        #: identifier -> the valid sightings, disputes, appeals and their retractions
        #: (author, seq, op)
        self.signals: dict[int, list[tuple[int, int, SignalOp]]] = {}
        #: appeal id -> the valid decisions on it: (author, seq, decision)
        self.decisions: dict[str, list[tuple[int, int, str]]] = {}
        self.kind_of: dict[int, str] = {}  # identifier -> kind
        self.canonical: dict[int, str] = {}
        self.value_of: dict[bytes, int] = {}  # every token made -> its identifier
        self._tokens: dict[tuple[int, int], bytes] = {}
        self._next_value = 0
        #: author -> seq beyond which its entries are not valid (removed members)
        self.until: dict[int, int] = {}
        #: authors whose feeds are not part of the ground truth (equivocators)
        self.excluded: set[int] = set()
        self.valid_published = 0
        self.lost_entries = 0

    # -- identifiers and tokens ----------------------------------------------------------

    def add_epoch(self, ep: int, key: bytes) -> None:
        """The key of a new epoch (the ground truth knows every key)."""
        self.keys.add(ep, key)

    def new_value(self, kind: str) -> int:
        """A fresh identifier of ``kind``; its tokens come from :meth:`token`."""
        n = self._next_value
        self._next_value += 1
        self.kind_of[n] = kind
        self.canonical[n] = canonical(kind, synthetic_value(kind, n), region=self.region)
        return n

    def token(self, value: int, ep: int) -> bytes:
        """The token of identifier ``value`` under epoch ``ep``."""
        tok = self._tokens.get((value, ep))
        if tok is None:
            tk = self._tokenizers.get(ep)
            if tk is None:
                tk = self._tokenizers[ep] = self.keys.tokenizer(ep)
            tok = tk.token(self.kind_of[value], self.canonical[value])
            self._tokens[(value, ep)] = tok
            self.value_of[tok] = value
        return tok

    def new_token(self, kind: str, ep: int = 1) -> bytes:
        """The token of a fresh identifier of ``kind`` (one nobody will report)."""
        return self.token(self.new_value(kind), ep)

    # -- publishing -----------------------------------------------------------------------

    def record(
        self,
        h: bytes,
        author: int,
        seq: int,
        t: float,
        ops: tuple[Op, ...],
        *,
        twin: bool = False,
        republished: bool = False,
    ) -> Published:
        valid = not twin and author not in self.excluded
        p = Published(
            hash=h,
            author=author,
            seq=seq,
            t=t,
            ops=ops,
            valid=valid,
            twin=twin,
            republished=republished,
        )
        self.entries.append(p)
        self.by_hash[h] = p
        if valid:
            self.valid_published += 1
            value_of = self.value_of
            for op in ops:
                if isinstance(op, AddOp) or (isinstance(op, RetractOp) and op.of is None):
                    self.by_value.setdefault(value_of[op.tok], []).append((author, seq, op))
                elif isinstance(op, AppealDecidedOp):
                    self.decisions.setdefault(op.id, []).append((author, seq, op.decision))
                else:
                    self.signals.setdefault(value_of[op.tok], []).append((author, seq, op))
        return p

    def mark_held(self, node: Holder, rec: Published, t: float) -> None:
        """``node`` accepted ``rec`` at ``t`` (or holds it again after losing its state)."""
        rec.held.setdefault(node.idx, t)
        if rec.hash not in node.holds:
            node.holds.add(rec.hash)
            if rec.valid:
                node.held_valid += 1

    def invalidate(self, rec: Published, nodes: Iterable[Holder]) -> None:
        """``rec`` leaves the delivery figures (it is past a removal, or lost)."""
        if not rec.valid:
            return
        rec.valid = False
        self.valid_published -= 1
        for n in nodes:
            if rec.hash in n.holds:
                n.held_valid -= 1

    def remove_after(self, author: int, until: int, nodes: Iterable[Holder]) -> None:
        """``author`` was removed after seq ``until``: later entries are not valid."""
        self.until[author] = until
        nodes = list(nodes)
        for r in self.entries:
            if r.author == author and r.seq > until and r.valid:
                self.invalidate(r, nodes)

    def lose_after(self, author: int, kept: int, nodes: Iterable[Holder]) -> int:
        """``author``'s entries after seq ``kept`` are gone with its state; how many."""
        nodes = list(nodes)
        lost = 0
        for r in self.entries:
            if r.author == author and not r.twin and r.seq > kept and not r.lost:
                r.lost = True
                self._drop(r)
                self.invalidate(r, nodes)
                lost += 1
        self.lost_entries += lost
        return lost

    def _drop(self, p: Published) -> None:
        """Take an entry out of the ground truth."""
        mine = (p.author, p.seq)
        for op in p.ops:
            if isinstance(op, AppealDecidedOp):
                got = self.decisions.get(op.id)
                if got is not None:
                    got[:] = [x for x in got if (x[0], x[1]) != mine]
                continue
            table: dict[int, list[Any]] = self.by_value if is_report_op(op) else self.signals
            value = self.value_of[op.tok]
            ops = table.get(value)
            if ops is None:
                continue
            ops[:] = [x for x in ops if (x[0], x[1]) != mine]
            if not ops:
                del table[value]

    def values(self) -> list[int]:
        """Every identifier in the ground truth, in the order first reported."""
        return list(self.by_value)

    def tokens_in_truth(self) -> int:
        """Distinct tokens with a valid op (an identifier has one per epoch it is reported in)."""
        return len({op.tok for ops in self.by_value.values() for _, _, op in ops})

    # -- ground truth -------------------------------------------------------------------------

    def _states(
        self, value: int, authors: set[int] | None, ignore_removals: bool
    ) -> dict[tuple[int, bytes], tuple[str, int, int, bool]]:
        """(author, token) -> (category, severity, expiry, retracted), as a store keeps them."""
        states: dict[tuple[int, bytes], tuple[str, int, int, bool]] = {}
        until = {} if ignore_removals else self.until
        for author, seq, op in self.by_value.get(value, ()):
            u = until.get(author)
            if u is not None and seq > u:
                continue
            if authors is not None and author not in authors:
                continue
            key = (author, op.tok)
            if isinstance(op, AddOp):
                states[key] = (op.cat, op.sev, op.exp, False)
            elif op.of is None and key in states:  # a retract of a sighting etc. is not one
                cat, sev, exp, _ = states[key]
                states[key] = (cat, sev, exp, True)
        return states

    def truth(
        self,
        value: int,
        now: int,
        *,
        authors: set[int] | None = None,
        ignore_removals: bool = False,
    ) -> Verdict | None:
        """What a node holding every valid entry (of ``authors``, if given) answers for
        ``value``, from all its tokens; ``ignore_removals`` counts entries past until_seq."""
        states = self._states(value, authors, ignore_removals)
        live = [(a, s) for (a, _), s in states.items() if not s[3] and s[2] > now]
        if not live:
            return None
        return Verdict(
            reporters=tuple(sorted({self._ids[a] for a, _ in live})),
            categories=tuple(sorted({s[0] for _, s in live})),
            max_severity=max(s[1] for _, s in live),
            expires=max(s[2] for _, s in live),
        )

    def extras(self, value: int, now: int) -> Extras | None:
        """What a matching verdict on ``value`` adds, from every valid entry (None: no
        match): members with a live sighting, with a live dispute, and whether an appeal
        that is not withdrawn still waits on a live reporter's decision (node.aftermatch's
        ``VerdictContext``: an appeal is open against each live reporter, other than its
        appellant, that has not decided it)."""
        states = self._states(value, None, False)
        reporters = {a for (a, _), s in states.items() if not s[3] and s[2] > now}
        if not reporters:
            return None
        until = self.until
        # (author, token, what) -> (expiry, retracted); (appeal id, author, token) -> withdrawn
        signals: dict[tuple[int, bytes, str], tuple[int, bool]] = {}
        appeals: dict[tuple[str, int, bytes], bool] = {}
        for author, seq, op in self.signals.get(value, ()):
            u = until.get(author)
            if u is not None and seq > u:
                continue
            if isinstance(op, SeenOp):
                signals[(author, op.tok, "seen")] = (op.exp, False)
            elif isinstance(op, DisputeOp):
                signals[(author, op.tok, "dispute")] = (op.exp, False)
            elif isinstance(op, AppealOp):
                appeals[(op.id, author, op.tok)] = False
            elif op.of == "appeal":
                for key in appeals:
                    if key[1] == author and key[2] == op.tok:
                        appeals[key] = True
            else:
                assert op.of is not None
                got = signals.get((author, op.tok, op.of))
                if got is not None:
                    signals[(author, op.tok, op.of)] = (got[0], True)
        live = {(a, w) for (a, _, w), (exp, gone) in signals.items() if not gone and exp > now}
        seen = {a for a, w in live if w == "seen"}
        disputed = {a for a, w in live if w == "dispute"}
        open_ids = {(aid, author) for (aid, author, _), gone in appeals.items() if not gone}
        under = False
        for aid, appellant in open_ids:
            decided = {
                a
                for a, seq, _ in self.decisions.get(aid, ())
                if until.get(a) is None or seq <= until[a]
            }
            if reporters - decided - {appellant}:
                under = True
                break
        return Extras(len(seen), len(disputed), under)
