"""What was really published, and what every honest node should therefore answer.

The simulator writes down every entry it has a member publish (:class:`Ledger`)
and, for every node, when that node first accepted it (through a listener on
the node's :class:`~protocol.feeds.Feeds`, so "accepted" means appended after
every check). From the ledger it derives the ground truth of each token —
which members report it, in which categories, how severe, until when — and
compares the answers the nodes give against it (:class:`Verdict`).

Identifiers are synthetic but real: raw values of each kind are put into
canonical form by :func:`contracts.indicators.canonical` and turned into
tokens with the consortium key, as a node does for a report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from contracts.indicators import canonical
from protocol.entries import AddOp, Op, RetractOp
from protocol.store import IndicatorState
from protocol.tokens import Tokenizer

__all__ = ["Ledger", "Published", "Verdict", "synthetic_value", "verdict_of"]


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
    """The ``n``-th raw identifier of ``kind``, as a member's platform would report it."""
    if kind == "phone":
        return f"+86 139 {n // 10_000 % 10_000:04d} {n % 10_000:04d}"
    if kind == "email":
        return f"User{n}@Example.COM"
    if kind == "device":
        return f"fp:DEV-{n:08X}"
    if kind == "account":
        return f"alipay:{n:010d}"
    if kind == "ip":
        return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
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


@dataclass(slots=True, eq=False)
class Published:
    """One entry a member published (or, for an equivocator, its twin)."""

    hash: bytes
    author: int  # node index
    seq: int
    t: float  # virtual ms
    ops: tuple[Op, ...]
    #: part of the ground truth and of the delivery figures (False: an equivocator's
    #: entries and twins, entries past a removed member's until_seq)
    valid: bool = True
    twin: bool = False
    lost: bool = False  # lost with its author's state before any other node held it
    held: dict[int, float] = field(default_factory=dict)  # node index -> first accepted


class Ledger:
    def __init__(self, tokenizer: Tokenizer, member_ids: list[bytes], region: str = "CN") -> None:
        self.tokenizer = tokenizer
        self._ids = member_ids  # node index -> member id
        self.region = region
        self.entries: list[Published] = []
        self.by_hash: dict[bytes, Published] = {}
        self.by_token: dict[bytes, list[tuple[int, int, Op, int]]] = {}  # author, seq, op, ts
        self.kind_of: dict[bytes, str] = {}
        self._next_value = 0
        #: author -> seq beyond which its entries are not valid (removed members)
        self.until: dict[int, int] = {}
        #: authors whose feeds are not part of the ground truth (equivocators)
        self.excluded: set[int] = set()

    # -- identifiers ----------------------------------------------------------------

    def new_token(self, kind: str) -> bytes:
        """A fresh identifier of ``kind``, canonicalised and tokenised."""
        n = self._next_value
        self._next_value += 1
        tok = self.tokenizer.token(
            kind, canonical(kind, synthetic_value(kind, n), region=self.region)
        )
        self.kind_of[tok] = kind
        return tok

    # -- publishing -----------------------------------------------------------------

    def record(
        self,
        h: bytes,
        author: int,
        seq: int,
        t: float,
        ts: int,
        ops: tuple[Op, ...],
        *,
        twin: bool = False,
    ) -> Published:
        valid = not twin and author not in self.excluded
        p = Published(hash=h, author=author, seq=seq, t=t, ops=ops, valid=valid, twin=twin)
        self.entries.append(p)
        self.by_hash[h] = p
        if valid:
            for op in ops:
                self.by_token.setdefault(op.tok, []).append((author, seq, op, ts))
        return p

    def drop(self, p: Published) -> None:
        """Take an entry out of the ground truth (it was lost with its author's state)."""
        for op in p.ops:
            ops = self.by_token.get(op.tok)
            if ops is None:
                continue
            ops[:] = [x for x in ops if not (x[0] == p.author and x[1] == p.seq)]
            if not ops:
                del self.by_token[op.tok]

    def tokens(self) -> list[bytes]:
        """Every token in the ground truth, in the order first reported."""
        return list(self.by_token)

    # -- ground truth ------------------------------------------------------------------

    def truth(self, tok: bytes, now: int, *, authors: set[int] | None = None) -> Verdict | None:
        """What a node holding every valid entry (of ``authors``, if given) answers for ``tok``."""
        states: dict[int, tuple[str, int, int, bool]] = {}
        for author, seq, op, _ts in self.by_token.get(tok, ()):
            until = self.until.get(author)
            if until is not None and seq > until:
                continue
            if authors is not None and author not in authors:
                continue
            if isinstance(op, AddOp):
                states[author] = (op.cat, op.sev, op.exp, False)
            elif isinstance(op, RetractOp) and author in states:
                cat, sev, exp, _ = states[author]
                states[author] = (cat, sev, exp, True)
        live = [(a, s) for a, s in states.items() if not s[3] and s[2] > now]
        if not live:
            return None
        return Verdict(
            reporters=tuple(sorted(self._ids[a] for a, _ in live)),
            categories=tuple(sorted({s[0] for _, s in live})),
            max_severity=max(s[1] for _, s in live),
            expires=max(s[2] for _, s in live),
        )
