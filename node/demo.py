"""`riskmesh demo`: a consortium of real nodes on loopback, walked through step by step.

Three members found a consortium (each an admin), each running `riskmesh
serve` as its own process with a temporary home and free ports. bank-a
reports a phone number, a device and a merchant; gossip carries the signed
tokens to pay-b and shop-c, whose platforms get a match. A fourth member is
onboarded with two of the three admin signatures, receives its key grant and
the earlier reports. bank-a retracts one report and the match disappears
everywhere. Then every node is stopped.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from contracts.errors import RiskmeshError
from node.localnet import LocalNet, open_for_reports, wait_until

FOUNDERS = ("bank-a", "pay-b", "shop-c")
NEWCOMER = "lend-d"
DEADLINE_S = 20.0
REPORTS = [
    {"kind": "phone", "value": "+86 138 0013 8000", "category": "telecom_fraud", "severity": 4},
    {"kind": "device", "value": "imei:490154203237518", "category": "device_risk", "severity": 3},
    {"kind": "merchant", "value": "shopid:M-7781", "category": "merchant_fraud", "severity": 5},
]
# what the other members' platforms ask, each in its own format
QUERIES = [
    {"kind": "phone", "value": "13800138000"},
    {"kind": "device", "value": "IMEI:490154203237518"},
    {"kind": "merchant", "value": "SHOPID:M-7781"},
]


def run_demo(keep: Path | None = None, console: Console | None = None) -> int:
    console = console or Console(highlight=False)
    root = keep if keep is not None else Path(tempfile.mkdtemp(prefix="riskmesh-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    net = LocalNet(root, FOUNDERS, env={"RISKMESH_GOSSIP_INTERVAL_S": "0.5"})
    try:
        _walk(net, console)
    except (RiskmeshError, OSError) as e:
        console.print(f"[red]demo failed:[/] {e}")
        for name in net.nodes:
            if net.log(name):
                console.print(f"[dim]{name} log:[/]\n{net.log(name)}")
        return 1
    finally:
        codes = net.stop()
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    bad = {n: c for n, c in codes.items() if c != 0}
    if bad:
        console.print(f"[red]nodes exited badly:[/] {bad}")
        return 1
    console.rule("done")
    console.print(f"all {len(codes)} nodes stopped cleanly in {time.monotonic() - t0:.1f} s")
    if keep is not None:
        console.print(f"homes kept in {keep} (start one with: riskmesh serve --home {keep}/bank-a)")
    return 0


def _walk(net: LocalNet, console: Console) -> None:
    step = _Steps(console)

    step("Three members found a consortium")
    console.print(net.found("demo-alliance", FOUNDERS, admins=FOUNDERS))
    console.print("every founder is an admin; a charter change needs 2 of the 3 signatures")
    net.start(*FOUNDERS)
    for name in FOUNDERS:
        node = net[name]
        console.print(
            f"  {name}: local API 127.0.0.1:{node.api_port}, peer API 127.0.0.1:{node.peer_port}"
        )
    wait_until(
        "every founder's key grant",
        lambda: all(open_for_reports(net.status(n)) for n in FOUNDERS),
        DEADLINE_S,
    )
    console.print("bank-a made key epoch 1 at genesis; its key grants reached pay-b and shop-c")

    step("bank-a's platform reports three indicators")
    receipt = net["bank-a"].client.report(REPORTS)
    for r in REPORTS:
        console.print(f"  {r['kind']:9} {r['value']:24} {r['category']} (severity {r['severity']})")
    console.print(
        f"signed entry seq {receipt['entry']['seq']} appended to bank-a's feed: "
        "keyed tokens only, the raw values stay on bank-a's node"
    )

    step("Gossip carries the entry to pay-b and shop-c")
    t = time.monotonic()
    wait_until(
        "the reports to match at pay-b and shop-c",
        lambda: all(
            all(v["match"] for v in net[n].client.query(QUERIES)) for n in ("pay-b", "shop-c")
        ),
        DEADLINE_S,
    )
    console.print(f"both hold and have checked bank-a's entry after {time.monotonic() - t:.1f} s")

    step("shop-c's platform checks its customers locally")
    _verdicts(console, net["shop-c"].client.query(QUERIES), QUERIES)

    step(f"Onboarding a fourth member, {NEWCOMER}, with two admin signatures")
    node = net.add(NEWCOMER)
    net.install(NEWCOMER)
    join = (node.home / "join-request.cbor").read_bytes()
    view = net["bank-a"].client.admin_propose("add-member", join_request=join)
    pid = view["id"]
    console.print(
        f"bank-a proposes charter version {view['version']} ({'; '.join(view['changes'])}): "
        f"proposal {pid}, {len(view['signers'])} of {view['needed']} signatures"
    )
    wait_until(
        "pay-b to receive the proposal",
        lambda: any(p["id"] == pid for p in net["pay-b"].client.admin_proposals()),
        DEADLINE_S,
    )
    view = net["pay-b"].client.admin_sign(pid)
    console.print(f"pay-b signs: {view['status']}; version {view['version']} is the charter now")
    net.start(NEWCOMER)
    wait_until(
        f"{NEWCOMER} to sync the charter and open its key grant",
        lambda: open_for_reports(net.status(NEWCOMER)),
        DEADLINE_S,
    )
    st = net.status(NEWCOMER)
    console.print(
        f"{NEWCOMER} started from the genesis as its trust anchor, checked charter versions "
        f"1..{st['charter']['version']}, and opened its key grant"
    )
    wait_until(
        f"{NEWCOMER} to receive the earlier reports",
        lambda: all(v["match"] for v in net[NEWCOMER].client.query(QUERIES)),
        DEADLINE_S,
    )
    console.print(f"{NEWCOMER} already finds the reports made before it joined:")
    _verdicts(console, net[NEWCOMER].client.query(QUERIES[:1]), QUERIES[:1])

    step("bank-a retracts the phone report (appeal upheld)")
    net["bank-a"].client.retract(
        [{"kind": "phone", "value": REPORTS[0]["value"], "reason": "appeal_upheld"}]
    )
    everyone = (*FOUNDERS, NEWCOMER)
    wait_until(
        "the match to disappear everywhere",
        lambda: not any(net[n].client.query(QUERIES[:1])[0]["match"] for n in everyone),
        DEADLINE_S,
    )
    console.print("the phone number no longer matches at any of the four members;")
    console.print("the device and the merchant still do:")
    _verdicts(console, net["pay-b"].client.query(QUERIES), QUERIES)

    step("Status of shop-c's node")
    st = net.status("shop-c")
    table = Table("member", "feed head", "last gossip with it")
    peers = {p["name"]: p for p in st["peers"]}
    for m in st["members"]:
        head = (m["head"] or {}).get("seq", 0)
        last = peers.get(m["name"], {}).get("last_success") or (
            "(this node)" if m["name"] == "shop-c" else "-"
        )
        table.add_row(m["name"], str(head), last)
    console.print(table)


def _verdicts(
    console: Console, results: list[dict[str, Any]], queries: list[dict[str, str]]
) -> None:
    t = Table("kind", "asked as", "match", "reporters", "categories", "max severity")
    for q, v in zip(queries, results, strict=True):
        t.add_row(
            q["kind"],
            q["value"],
            "[bold red]MATCH[/]" if v["match"] else "no match",
            ", ".join(v.get("reported_by", [])) or str(v.get("reporters", "-")),
            ", ".join(v.get("categories", [])) or "-",
            str(v.get("max_severity", "-")),
        )
    console.print(t)


class _Steps:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.n = 0

    def __call__(self, title: str) -> None:
        self.n += 1
        self.console.rule(f"{self.n}. {title}")
