"""`riskmesh demo`: a walk through what riskmesh does, printed as it happens.

This version runs three members' protocol stacks in one process (real keys,
charter, tokens, signed feeds, validation), each with its own in-memory
store: member A reports, its signed entry is handed to B and C, which check it
and find the match; a forged and a replayed entry are refused; A retracts and
the match disappears everywhere.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from contracts.charter import Charter, EpochInfo, Member
from contracts.indicators import canonical
from contracts.policy import DAY_MS
from protocol.charter_chain import CharterChain, sign_charter
from protocol.entries import AddOp, RetractOp
from protocol.feeds import Feeds
from protocol.keys import MemberKey, short_id
from protocol.store import MemoryStore
from protocol.tokens import EpochKeys


@dataclass
class DemoMember:
    name: str
    key: MemberKey
    feeds: Feeds
    epoch_keys: EpochKeys

    def verdict(self, kind: str, value: str, now: int) -> tuple[int, list[str]]:
        tok = self.epoch_keys.tokenizer(1).token(kind, canonical(kind, value))
        live = [s for s in self.feeds.store.indicators(tok) if s.live(now)]
        return len({s.author for s in live}), sorted({s.cat for s in live})


def run_demo(console: Console | None = None) -> int:
    console = console or Console()
    now = int(time.time() * 1000)
    names = ["bank-a", "pay-b", "shop-c"]
    keys = {n: MemberKey.generate() for n in names}
    members = tuple(
        Member(
            id=keys[n].id,
            name=n,
            endpoint=f"http://127.0.0.1/{n}",
            roles=frozenset({"admin", "publisher", "reader"}),
        )
        for n in names
    )
    genesis = Charter(
        consortium="demo",
        version=1,
        prev=None,
        ts=now,
        members=members,
        epochs=(EpochInfo(ep=1, since=now),),
    )
    genesis_raw = sign_charter(genesis, keys.values())
    epoch_keys = EpochKeys({1: secrets.token_bytes(32)})
    nodes = {
        n: DemoMember(n, keys[n], Feeds(MemoryStore(), CharterChain(genesis_raw)), epoch_keys)
        for n in names
    }
    console.rule("[bold]riskmesh demo")
    console.print(
        f"Genesis charter of consortium [bold]demo[/], signed by all three founders "
        f"({', '.join(f'{n} {short_id(keys[n].id)}' for n in names)})."
    )

    a, b, c = (nodes[n] for n in names)
    reports = [
        ("phone", "+86 138 0013 8000", "telecom_fraud", 5),
        ("device", "imei:49-015420-323751-8", "device_risk", 3),
        ("merchant", "uscc:91350100M000100Y43", "merchant_fraud", 4),
    ]
    ops = []
    for kind, value, cat, sev in reports:
        canon = canonical(kind, value)
        tok = epoch_keys.tokenizer(1).token(kind, canon)
        ops.append(AddOp(tok, kind, 1, cat, sev, now + 90 * DAY_MS))
        console.print(
            f"bank-a reports a {kind}: canonical form stays on bank-a, token "
            f"{tok.hex()[:12]}… goes in its feed"
        )
    entry = a.feeds.publish(a.key, ops, now)
    console.print(
        f"bank-a signs entry seq {entry.seq} ({len(entry.raw)} bytes, {len(entry.ops)} ops)"
    )
    for other in (b, c):
        offer = other.feeds.offer(entry.raw, now)
        console.print(f"{other.name} checks signature, chain and policy: [green]{offer.status}[/]")

    table = Table(title="shop-c's platform queries its own node")
    for col in ("kind", "match", "reporters", "categories"):
        table.add_column(col)
    for kind, value, _, _ in reports:
        n, cats = c.verdict(kind, value, now)
        table.add_row(kind, "yes" if n else "no", str(n), ", ".join(cats))
    console.print(table)

    forged = bytearray(entry.raw)
    forged[-1] ^= 1
    console.print(
        f"A forged copy is offered to pay-b: "
        f"[red]{b.feeds.offer(bytes(forged), now).reason}[/]; "
        f"a replay: {b.feeds.offer(entry.raw, now).status}"
    )

    retract = a.feeds.publish(a.key, [RetractOp(ops[0].tok, "phone", 1, "appeal_upheld")], now)
    for other in (b, c):
        other.feeds.offer(retract.raw, now)
    n, _ = c.verdict("phone", "13800138000", now)
    console.print(
        f"bank-a retracts the phone report (appeal upheld); shop-c now sees "
        f"{'a match' if n else 'no match'} for it"
    )
    console.rule("done")
    return 0 if n == 0 else 1
