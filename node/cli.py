"""The `riskmesh` command line (click). Commands are thin: parse, call, print.

Exit status is 0 on success, non-zero with a one-line reason on stderr otherwise.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import click

from contracts.errors import RiskmeshError
from contracts.indicators import KINDS
from contracts.taxonomy import APPEAL_DECISIONS, CATEGORIES, DISPUTE_REASONS, RETRACT_REASONS

HOME_HELP = "The node's home directory (config, keys, database)."
KIND_CHOICE = click.Choice(sorted(KINDS))
CATEGORY_CHOICE = click.Choice(list(CATEGORIES))
REASON_CHOICE = click.Choice(list(RETRACT_REASONS))


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def home_option(f: Any) -> Any:
    return click.option(
        "--home",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        envvar="RISKMESH_HOME",
        help=HOME_HELP,
    )(f)


def json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(f)


def long_option(f: Any) -> Any:
    return click.option("--long", is_flag=True, help="Show full ids and hashes.")(f)


def _duration(seconds: int) -> str:
    """``seconds`` for a person: 45 s, 6 min 27 s, 3 h 05 min."""
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _console() -> Any:
    """A rich console; piped (not a terminal), tables are not cut to 80 columns."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=100_000, soft_wrap=True)


def _short(text: str, long: bool, n: int = 8) -> str:
    return text if long else text[:n]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="riskmesh")
def main() -> None:
    """riskmesh: share keyed-hash fraud blacklists between consortium members."""


# -- init ------------------------------------------------------------------------


@main.command()
@home_option
@click.option("--name", required=True, help="This member's name, as the charter will show it.")
@click.option("--endpoint", required=True, help="URL of this node's peer API, for other members.")
@click.option(
    "--api-listen", default="127.0.0.1:7700", show_default=True, help="HOST:PORT for the local API."
)
@click.option(
    "--peer-listen", default="127.0.0.1:7701", show_default=True, help="HOST:PORT for the peer API."
)
@click.option(
    "--region",
    default="CN",
    show_default=True,
    help="Default region for phone numbers without a country code.",
)
def init(
    home: Path, name: str, endpoint: str, api_listen: str, peer_listen: str, region: str
) -> None:
    """Create a node home: config, member key, database, join request, API token.

    \b
    Example:
        riskmesh init --home ./bank-a --name bank-a --endpoint http://10.0.0.5:7701
    """
    from node.home import init_home

    try:
        init_home(
            home,
            name=name,
            endpoint=endpoint,
            api_listen=api_listen,
            peer_listen=peer_listen,
            region=region,
        )
    except (RiskmeshError, OSError, FileExistsError) as e:
        fail(str(e))
    click.echo(f"initialised {home}: join request at {home / 'join-request.cbor'}")


# -- charter ---------------------------------------------------------------------


@main.group()
def charter() -> None:
    """Make, sign and install the consortium charter."""


@charter.command("genesis")
@home_option
@click.option("--consortium", required=True, help="The consortium's name.")
@click.option(
    "--member",
    "members",
    multiple=True,
    metavar="JOIN[:admin]",
    help="Another founder's join-request file; ':admin' makes it an admin. Repeatable.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the genesis charter.",
)
def charter_genesis(home: Path, consortium: str, members: tuple[str, ...], out: Path) -> None:
    """Write the genesis charter (version 1), with this node's member as an admin.

    Creates the consortium key of epoch 1 and keeps it in this node's store.

    \b
    Example:
        riskmesh charter genesis --home ./bank-a --consortium alliance \\
            --member ./pay-b/join-request.cbor:admin --out genesis.cbor
    """
    from node.home import make_genesis

    try:
        info = make_genesis(home, consortium, list(members), out)
    except (RiskmeshError, OSError) as e:
        fail(str(e))
    click.echo(f"wrote {out}: {info}")


@charter.command("sign")
@home_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def charter_sign(home: Path, file: Path) -> None:
    """Add this node's member signature to a charter file, in place.

    \b
    Example:
        riskmesh charter sign --home ./pay-b genesis.cbor
    """
    from node.home import sign_charter_file

    try:
        n = sign_charter_file(home, file)
    except (RiskmeshError, OSError) as e:
        fail(str(e))
    click.echo(f"signed {file}: {n} signature(s)")


@charter.command("install")
@home_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def charter_install(home: Path, file: Path) -> None:
    """Install a fully signed genesis charter; its hash becomes this node's trust anchor.

    \b
    Example:
        riskmesh charter install --home ./bank-a genesis.cbor
    """
    from node.home import install_charter_file

    try:
        info = install_charter_file(home, file)
    except (RiskmeshError, OSError) as e:
        fail(str(e))
    click.echo(f"installed {info}")


# -- serve -----------------------------------------------------------------------


@main.command()
@home_option
def serve(home: Path) -> None:
    """Run the node: the local API, the peer API and the gossip jobs until stopped.

    One writer process (gossip, reports, administration, upkeep, the peer API) and
    serve.workers serving processes sharing api.listen (0: one per core), which
    answer queries themselves; SIGTERM or SIGINT stops them all.

    \b
    Example:
        riskmesh serve --home ./bank-a
    """
    from node.server import run

    try:
        run(home)
    except RiskmeshError as e:
        fail(str(e))


@main.command()
@home_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(home: Path, file: Path) -> None:
    """Copy the node's database to FILE, consistently, while the node runs.

    SQLite's online backup: a snapshot of one moment, whatever the node is
    writing. FILE is made private (0600); keep `keys/member.key` apart from it.
    To restore, follow the operator guide: the restored node holds its own
    reports until it has heard from a peer, so it never signs twice at a seq.

    \b
    Example:
        riskmesh backup --home ./bank-a /backup/bank-a-2026-11-29.db
    """
    from node.home import backup_database

    try:
        pages = backup_database(home, file)
    except (RiskmeshError, OSError) as e:
        fail(str(e))
    click.echo(f"backed up {pages} pages to {file}")


@main.command()
@home_option
def rekey(home: Path) -> None:
    """Make a new member key for this node, for when its feed is frozen by a fork proof.

    Writes `keys/member.next.key` and a new `join-request.cbor` signed by it. Hand
    the join request to an admin, who proposes `riskmesh admin propose
    rekey-member`; once that version is final, the running node adopts the new
    key by itself and republishes its live reports under it.

    \b
    Example:
        riskmesh rekey --home ./shop-d
    """
    from node.home import prepare_rekey

    try:
        path = prepare_rekey(home)
    except (RiskmeshError, OSError) as e:
        fail(str(e))
    click.echo(f"new key ready; hand {path} to an admin (riskmesh admin propose rekey-member)")


# -- talking to the running node ------------------------------------------------------


def _client(home: Path) -> Any:
    from node.client import LocalClient

    try:
        return LocalClient.from_home(home)
    except (RiskmeshError, OSError) as e:
        fail(str(e))


def _call(fn: Any, *args: Any, **kw: Any) -> Any:
    from node.client import ClientError

    try:
        return fn(*args, **kw)
    except ClientError as e:
        fail(e.one_line())


FILE_HELP = (
    "CSV file for a batch ('-' for stdin): a header row naming the columns, then one "
    "row per item; UTF-8 with or without a BOM, ',' or ';' between fields."
)


def file_options(f: Any) -> Any:
    f = click.option(
        "--echo-value", is_flag=True, help="With --file: repeat each row's value in the results."
    )(f)
    return click.option("--file", "csv_file", type=click.File("rb"), help=FILE_HELP)(f)


@main.command()
@home_option
@click.option("--kind", type=KIND_CHOICE, help="Indicator kind.")
@click.option("--value", help="The raw identifier (stays on this node).")
@click.option("--category", type=CATEGORY_CHOICE, help="Fraud category from the taxonomy.")
@click.option(
    "--severity", type=click.IntRange(1, 5), default=3, show_default=True, help="1 (low) .. 5."
)
@click.option("--ttl-days", type=click.IntRange(min=1), default=None, help="Days until expiry.")
@click.option("--ref", default=None, help="Your own case id (opaque to others).")
@file_options
@json_option
def report(
    home: Path,
    kind: str | None,
    value: str | None,
    category: str | None,
    severity: int,
    ttl_days: int | None,
    ref: str | None,
    csv_file: Any,
    echo_value: bool,
    as_json: bool,
) -> None:
    """Report one indicator, or a CSV file of them, to the running node.

    A file has the columns kind,value,category and optionally severity,
    ttl_days,ref. Every valid row is published; refused rows are listed with
    their row number, and the exit status is then 1.

    \b
    Example:
        riskmesh report --home ./bank-a --kind phone --value "+86 138 0013 8000" \\
            --category telecom_fraud --severity 4
        riskmesh report --home ./bank-a --file cases.csv
    """
    if csv_file is not None:
        from node.csvbatch import REPORT_COLUMNS

        _publish_file(home, csv_file, REPORT_COLUMNS, "report", echo_value, as_json)
        return
    if kind is None or value is None or category is None:
        fail("give --kind, --value and --category, or --file")
    item: dict[str, Any] = {
        "kind": kind,
        "value": value,
        "category": category,
        "severity": severity,
    }
    if ttl_days is not None:
        item["ttl_days"] = ttl_days
    if ref is not None:
        item["ref"] = ref
    r = _call(_client(home).report, [item])
    if as_json:
        click.echo(json.dumps(r))
    else:
        click.echo(f"reported: entry seq {r['entry']['seq']}")


@main.command()
@home_option
@click.option("--kind", type=KIND_CHOICE, help="Indicator kind.")
@click.option("--value", help="The raw identifier you reported.")
@click.option("--reason", type=REASON_CHOICE, help="Why the report is retracted.")
@click.option(
    "--of",
    "of",
    type=click.Choice(["report", "seen", "dispute", "appeal"]),
    default="report",
    show_default=True,
    help="What of this member's to withdraw: its report, sighting, dispute or appeal.",
)
@file_options
@json_option
def retract(
    home: Path,
    kind: str | None,
    value: str | None,
    reason: str | None,
    of: str,
    csv_file: Any,
    echo_value: bool,
    as_json: bool,
) -> None:
    """Retract this member's own report of an indicator, or a CSV file of them.

    A file has the columns kind,value,reason; exit status 1 if any row was refused.
    With --of, withdraw this member's sighting, dispute or appeal instead.

    \b
    Example:
        riskmesh retract --home ./bank-a --kind phone --value 13800138000 --reason appeal_upheld
        riskmesh retract --home ./bank-a --file resolved.csv
        riskmesh retract --home ./shop-c --kind phone --value 13800138000 --reason other --of seen
    """
    if csv_file is not None:
        from node.csvbatch import RETRACT_COLUMNS

        _publish_file(home, csv_file, RETRACT_COLUMNS, "retract", echo_value, as_json)
        return
    if kind is None or value is None or reason is None:
        fail("give --kind, --value and --reason, or --file")
    item = {"kind": kind, "value": value, "reason": reason}
    if of != "report":
        item["of"] = of
    r = _call(_client(home).retract, [item])
    click.echo(json.dumps(r) if as_json else f"retracted: entry seq {r['entry']['seq']}")


@main.command()
@home_option
@click.option("--kind", type=KIND_CHOICE, help="Indicator kind (single query).")
@click.option("--value", help="The identifier to check (single query).")
@file_options
@json_option
def query(
    home: Path,
    kind: str | None,
    value: str | None,
    csv_file: Any,
    echo_value: bool,
    as_json: bool,
) -> None:
    """Check indicators against every member's reports, locally.

    A file has the columns kind,value; it is sent in batches of api.max_batch.
    Each result names its row and kind (the value too with --echo-value); the
    exit status is 1 if any row could not be checked.

    \b
    Example:
        riskmesh query --home ./shop-c --kind phone --value 13800138000
        riskmesh query --home ./shop-c --file suspects.csv --json
    """
    if csv_file is not None:
        from node.csvbatch import QUERY_COLUMNS, query_rows

        rows = _read_file(csv_file, QUERY_COLUMNS)
        client, size = _client(home), _batch_size(home, None)
        outcomes = _call(query_rows, rows, client.query, size)
        _print_outcomes(outcomes, echo_value, as_json, _describe)
        return
    if kind is None or value is None:
        fail("give --kind and --value, or --file")
    [r] = _call(_client(home).query, [{"kind": kind, "value": value}])
    if as_json:
        click.echo(json.dumps(r))
        return
    click.echo(f"{kind}\t{_describe(r)}")
    if "error" in r:
        sys.exit(1)


def _read_file(csv_file: Any, columns: Any) -> Any:
    from node.csvbatch import BatchFileError, read_rows

    name = getattr(csv_file, "name", "-")
    name = "stdin" if name in ("-", "<stdin>") else str(name)
    try:
        return read_rows(csv_file.read(), columns, name)
    except BatchFileError as e:
        fail(str(e))


def _batch_size(home: Path, client: Any) -> int:
    """api.max_batch, and for reports and retractions also the policy's max_ops."""
    from node.config import load_config

    size = int(load_config(home)["api.max_batch"])
    if client is not None:
        policy = (_call(client.status).get("charter") or {}).get("policy") or {}
        size = min(size, int(policy.get("max_ops", size)))
    return size


def _publish_file(
    home: Path, csv_file: Any, columns: Any, what: str, echo_value: bool, as_json: bool
) -> None:
    from node.csvbatch import publish_rows

    rows = _read_file(csv_file, columns)
    client = _client(home)
    send = client.report if what == "report" else client.retract
    outcomes = _call(publish_rows, rows, send, _batch_size(home, client))

    def describe(r: dict[str, Any]) -> str:
        if "error" in r:
            return f"refused {r['error']['code']}: {r['error']['message']}"
        return f"{what}ed: entry seq {r['entry']['seq']}"

    _print_outcomes(outcomes, echo_value, as_json, describe)


def _print_outcomes(outcomes: Any, echo_value: bool, as_json: bool, describe: Any) -> None:
    refused = sum(1 for o in outcomes if o.refused)
    if as_json:
        click.echo(json.dumps([o.to_json(echo_value) for o in outcomes]))
    else:
        for o in outcomes:
            shown = f"\t{o.value}" if echo_value else ""
            click.echo(f"row {o.row}\t{o.kind}{shown}\t{describe(o.result)}")
        click.echo(f"{len(outcomes)} row(s), {refused} refused", err=True)
    if refused:
        sys.exit(1)


def _describe(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"error {r['error']['code']}: {r['error']['message']}"
    if not r["match"]:
        return "no match"
    who = f" ({', '.join(r['reported_by'])})" if "reported_by" in r else ""
    return (
        f"MATCH reporters={r['reporters']}{who} categories={','.join(r['categories'])} "
        f"max_severity={r['max_severity']} expires={r['expires']}"
    )


@main.command()
@home_option
@long_option
@json_option
def status(home: Path, long: bool, as_json: bool) -> None:
    """Show the node's member, charter, members with feed heads, index, epochs and peers.

    Per peer: the version it runs, the last successful gossip exchange,
    failures and back-off, quarantine, and the lag in entries each way as the
    peer last told. --long shows full member ids and head hashes.

    \b
    Example:
        riskmesh status --home ./bank-a
        riskmesh status --home ./bank-a --long
    """
    s = _call(_client(home).status)
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    from rich.table import Table

    c = s.get("charter") or {}
    console = _console()
    version = (s.get("version") or {}).get("riskmesh", "?")
    console.print(
        f"member {s['member'].get('name', '?')} {_short(s['member']['id'], long)}; riskmesh "
        f"{version}; consortium {c.get('consortium', '-')} charter v{c.get('version', '-')}; "
        f"epochs {s['epochs']}; index {s['index']['count']} tokens"
    )
    if s["member"].get("status") == "revoked":
        console.print(
            "REMOVED: a charter version removed this member from the consortium; its "
            "reports are refused (409 revoked) and other members no longer gossip with it"
        )
    if s.get("syncing"):
        console.print(
            "SYNCING: this node started recently and holds its own reports (409 syncing) "
            "until it has completed one exchange with a peer"
        )
    cu = s.get("catch_up")
    if cu:
        rate = cu["entries_per_s"]
        eta = cu["eta_s"]
        console.print(
            f"CATCHING UP: {cu['entries_behind']} entries behind its peers; "
            + (
                f"{rate:g} entries/s ({cu['ops_per_s']:g} ops/s) over the last minute, "
                f"about {_duration(eta)} left at that rate"
                if eta is not None
                else "no entry replicated in the last minute (are its peers reachable?)"
            )
        )
    for fork in s.get("forks") or []:
        who = next((m["name"] for m in s["members"] if m["id"] == fork["log"]), fork["log"][:8])
        mine = fork["log"] == s["member"]["id"]
        console.print(
            f"FORK PROOF: member {who} signed two different entries at seq {fork['seq']}. "
            "Its feed is frozen on every node that holds the proof and its reports no longer "
            "count in any verdict."
            + (
                " This is THIS member's feed: it was most likely restored from an old backup "
                "and signed again. Reports are refused; ask an admin for `riskmesh admin "
                "propose rekey-member` (docs/admin-guide.md) to get a new key and feed."
                if mine
                else ""
            )
        )
    t = Table("member", "id", "status", "roles", "head seq", "head time")
    for m in s["members"]:
        h = m["head"] or {}
        t.add_row(
            m["name"],
            _short(m["id"], long),
            m["status"],
            ",".join(m["roles"]),
            str(h.get("seq", 0)),
            h.get("ts", "-"),
        )
    console.print(t)
    peers = s.get("peers") or []
    if peers:
        p = Table(
            "peer",
            "version",
            "last success",
            "exchanges",
            "failures",
            "backing off until",
            "lag",
            "invalid",
        )
        for row in peers:
            lag = row.get("lag")
            p.add_row(
                row["name"],
                row.get("version") or "?",
                row["last_success"] or "never",
                str(row["exchanges"]),
                f"{row['failures']} ({row['consecutive_failures']} in a row)",
                row["backoff_until"] or row["quarantined_until"] or "-",
                "-" if lag is None else f"we lack {lag['we_lack']}, they lack {lag['they_lack']}",
                str(row["invalid"]) + (" QUARANTINED" if row["quarantined_until"] else ""),
            )
        console.print(p)


# -- after the match: sightings, disputes, appeals (node/aftermatch.py) -------------------

SIGNAL_COLUMNS = (("kind", "value"), ("ttl_days",))
DISPUTE_COLUMNS = (("kind", "value", "reason"), ("ttl_days",))


def _signal(
    home: Path,
    what: str,
    item: dict[str, Any] | None,
    csv_file: Any,
    echo_value: bool,
    as_json: bool,
) -> None:
    client = _client(home)
    send = client.seen if what == "seen" else client.dispute
    if csv_file is not None:
        from node.csvbatch import publish_rows

        rows = _read_file(csv_file, SIGNAL_COLUMNS if what == "seen" else DISPUTE_COLUMNS)
        outcomes = _call(publish_rows, rows, send, _batch_size(home, client))

        def describe(r: dict[str, Any]) -> str:
            if "error" in r:
                return f"refused {r['error']['code']}: {r['error']['message']}"
            return f"{what}: entry seq {r['entry']['seq']}"

        _print_outcomes(outcomes, echo_value, as_json, describe)
        return
    if item is None:
        need = "--kind, --value and --reason" if what == "dispute" else "--kind and --value"
        fail(f"give {need}, or --file")
    r = _call(send, [item])
    click.echo(json.dumps(r) if as_json else f"{what}: entry seq {r['entry']['seq']}")


@main.command()
@home_option
@click.option("--kind", type=KIND_CHOICE, help="Indicator kind.")
@click.option("--value", help="The raw identifier (stays on this node).")
@click.option("--ttl-days", type=click.IntRange(min=1), default=None, help="Days until it lapses.")
@file_options
@json_option
def seen(
    home: Path,
    kind: str | None,
    value: str | None,
    ttl_days: int | None,
    csv_file: Any,
    echo_value: bool,
    as_json: bool,
) -> None:
    """Say this member saw an indicator in fraud too: a sighting of other members' reports.

    Verdicts everywhere count the members that saw it (sightings), and it raises
    their confidence. Withdraw it with `riskmesh retract --of seen`. A file has
    the columns kind,value and optionally ttl_days.

    \b
    Example:
        riskmesh seen --home ./shop-c --kind phone --value 13800138000
        riskmesh seen --home ./shop-c --file seen.csv
    """
    item: dict[str, Any] | None = None
    if kind is not None and value is not None:
        item = {"kind": kind, "value": value}
        if ttl_days is not None:
            item["ttl_days"] = ttl_days
    _signal(home, "seen", item, csv_file, echo_value, as_json)


@main.command()
@home_option
@click.option("--kind", type=KIND_CHOICE, help="Indicator kind.")
@click.option("--value", help="The raw identifier (stays on this node).")
@click.option(
    "--reason", type=click.Choice(list(DISPUTE_REASONS)), help="Why this member disagrees."
)
@click.option("--ttl-days", type=click.IntRange(min=1), default=None, help="Days until it lapses.")
@file_options
@json_option
def dispute(
    home: Path,
    kind: str | None,
    value: str | None,
    reason: str | None,
    ttl_days: int | None,
    csv_file: Any,
    echo_value: bool,
    as_json: bool,
) -> None:
    """Dispute other members' reports of an indicator: our evidence says otherwise.

    Verdicts everywhere count the members that dispute it (disputes), and it
    lowers their confidence. Withdraw it with `riskmesh retract --of dispute`.
    A file has the columns kind,value,reason and optionally ttl_days.

    \b
    Example:
        riskmesh dispute --home ./shop-c --kind phone --value 13800138000 \\
            --reason legitimate_customer
        riskmesh dispute --home ./shop-c --file disputes.csv
    """
    item: dict[str, Any] | None = None
    if kind is not None and value is not None and reason is not None:
        item = {"kind": kind, "value": value, "reason": reason}
        if ttl_days is not None:
            item["ttl_days"] = ttl_days
    _signal(home, "dispute", item, csv_file, echo_value, as_json)


@main.group()
def appeal() -> None:
    """Data subjects' appeals: file one for a customer, list and decide those received.

    An appeal reaches the members that report the value, sealed, without this
    node learning who they are; each decides it within the policy's appeal_days.
    """


@appeal.command("file")
@home_option
@click.option("--kind", type=KIND_CHOICE, required=True, help="Indicator kind.")
@click.option("--value", required=True, help="Your customer's identifier (stays on this node).")
@click.option("--case-ref", required=True, help="Your case id, for the reporters (sealed).")
@click.option("--grounds", required=True, help="What the customer says (sealed).")
@json_option
def appeal_file(
    home: Path, kind: str, value: str, case_ref: str, grounds: str, as_json: bool
) -> None:
    """File a data subject's appeal against the reports of an identifier.

    Prints the appeal id and the deadline by which the reporters must decide.

    \b
    Example:
        riskmesh appeal file --home ./pay-b --kind phone --value 13800138000 \\
            --case-ref B-2024-117 --grounds "number ported to my client in May"
    """
    r = _call(_client(home).appeal_file, kind, value, case_ref, grounds)
    if as_json:
        click.echo(json.dumps(r))
    else:
        click.echo(f"appeal {r['id']} filed; the reporters decide by {r['deadline']}")


@appeal.command("list")
@home_option
@json_option
def appeal_list(home: Path, as_json: bool) -> None:
    """List appeals received as a reporter (with the grounds) and appeals filed here.

    \b
    Example:
        riskmesh appeal list --home ./bank-a
    """
    r = _call(_client(home).appeals)
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    for a in r["inbound"]:
        due = " OVERDUE" if a["overdue"] else ""
        click.echo(
            f"received {a['id']} from {a['appellant']} ({a['kind']}, case {a['case_ref']}): "
            f"{a['status']}{due}, decide by {a['deadline']}\n    {a['grounds']}"
        )
    for a in r["outbound"]:
        click.echo(
            f"filed {a['id']} ({a['kind']}, case {a['case_ref']}): {a['status']}, "
            f"{a['upheld']} upheld, {a['rejected']} rejected, {a['pending']} pending"
        )
        for n in a["notes"]:
            click.echo(f"    {n['decision']}: {n['note']}")
    if not r["inbound"] and not r["outbound"]:
        click.echo("no appeals")


@appeal.command("decide")
@home_option
@click.argument("appeal_id")
@click.option(
    "--decision",
    type=click.Choice(list(APPEAL_DECISIONS)),
    required=True,
    help="upheld retracts this member's reports of the value; rejected keeps them.",
)
@click.option("--note", default="", help="A note for the appellant (sealed to it).")
@json_option
def appeal_decide(home: Path, appeal_id: str, decision: str, note: str, as_json: bool) -> None:
    """Decide appeal APPEAL_ID, received as a reporter of the value.

    \b
    Example:
        riskmesh appeal decide --home ./bank-a 3f9a0c1d2e4b5a69 --decision rejected \\
            --note "two chargebacks on this number since"
    """
    r = _call(_client(home).appeal_decide, appeal_id, decision, note)
    if as_json:
        click.echo(json.dumps(r))
    else:
        click.echo(
            f"appeal {r['id']} {r['decision']}: entry seq {r['entry']['seq']}, "
            f"{r['retracted']} report(s) retracted"
        )


# -- administration ----------------------------------------------------------------------


@main.group()
def admin() -> None:
    """Consortium administration: propose and sign charter changes (admins only).

    A proposal is the next charter version, signed by its proposer; it travels
    by gossip and takes effect once a quorum of admins has signed it.
    """


@admin.group()
def propose() -> None:
    """Propose a charter change; prints the proposal id as the last word."""


def _print_proposal(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    deadline = view.get("signing_deadline")
    click.echo(
        f"version {view['version']}: {'; '.join(view['changes'])}\n"
        f"signed by {', '.join(view['signers'])} ({len(view['signers'])} of {view['needed']} "
        f"needed), {view['status']}"
        + (f", signing deadline {deadline}" if deadline else "")
        + f"; proposal {view['id']}"
    )


@propose.command("add-member")
@home_option
@click.argument("join", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--admin", "as_admin", is_flag=True, help="Make the newcomer an admin too.")
@json_option
def propose_add_member(home: Path, join: Path, as_admin: bool, as_json: bool) -> None:
    """Propose adding the member whose join request is JOIN.

    \b
    Example:
        riskmesh admin propose add-member --home ./bank-a ./newbank/join-request.cbor
    """
    c = _client(home)
    view = _call(c.admin_propose, "add-member", join_request=join.read_bytes(), admin=as_admin)
    _print_proposal(view, as_json)


@propose.command("remove-member")
@home_option
@click.argument("member")
@json_option
def propose_remove_member(home: Path, member: str, as_json: bool) -> None:
    """Propose removing MEMBER — its name, full id, or an unambiguous id prefix of
    at least 4 characters (its entries after its current head are refused
    everywhere), with a key rotation in the same version.

    \b
    Example:
        riskmesh admin propose remove-member --home ./bank-a shop-d
        riskmesh admin propose remove-member --home ./bank-a g2bep2g6
    """
    _print_proposal(_call(_client(home).admin_propose, "remove-member", member=member), as_json)


@propose.command("rekey-member")
@home_option
@click.argument("member")
@click.argument("join", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def propose_rekey_member(home: Path, member: str, join: Path, as_json: bool) -> None:
    """Propose giving MEMBER a new key and a new feed, from the join request JOIN that
    `riskmesh rekey` wrote at that member. Its old feed stays (frozen, if a fork proof
    froze it) as evidence; its node adopts the new key once the version is final and
    republishes its live reports under it.

    \b
    Example:
        riskmesh admin propose rekey-member --home ./bank-a shop-d ./shop-d/join-request.cbor
    """
    view = _call(
        _client(home).admin_propose,
        "rekey-member",
        member=member,
        join_request=join.read_bytes(),
    )
    _print_proposal(view, as_json)


@propose.command("rotate-key")
@home_option
@json_option
def propose_rotate_key(home: Path, as_json: bool) -> None:
    """Propose a new key epoch, granted to every active member once in force.

    \b
    Example:
        riskmesh admin propose rotate-key --home ./bank-a
    """
    _print_proposal(_call(_client(home).admin_propose, "rotate-key"), as_json)


@propose.command("policy")
@home_option
@click.option(
    "--set",
    "settings",
    multiple=True,
    required=True,
    metavar="FIELD=JSON",
    help="A data policy field and its new value as JSON; repeatable.",
)
@json_option
def propose_policy(home: Path, settings: tuple[str, ...], as_json: bool) -> None:
    """Propose a change to the data policy.

    \b
    Example:
        riskmesh admin propose policy --home ./bank-a --set disclose_reporters=false \\
            --set 'max_ttl_days={"telecom_fraud": 730}'
    """
    changes: dict[str, Any] = {}
    for s in settings:
        field, sep, value = s.partition("=")
        if not sep:
            fail(f"--set takes FIELD=JSON, got {s!r}")
        try:
            changes[field.strip()] = json.loads(value)
        except ValueError:
            fail(f"--set {field}: {value!r} is not JSON")
    _print_proposal(_call(_client(home).admin_propose, "policy", set=changes), as_json)


@admin.command("proposals")
@home_option
@json_option
def admin_proposals(home: Path, as_json: bool) -> None:
    """List the proposals this node holds, with who has signed.

    \b
    Example:
        riskmesh admin proposals --home ./bank-a
    """
    props = _call(_client(home).admin_proposals)
    if as_json:
        click.echo(json.dumps(props, indent=2))
        return
    from rich.table import Table

    t = Table("version", "status", "changes", "signed by", "needed", "signing deadline")
    t.add_column("id", no_wrap=True)
    for p in props:
        t.add_row(
            str(p["version"]),
            p["status"],
            "\n".join(p["changes"]),
            ", ".join(p["signers"]),
            str(p["needed"]),
            p.get("signing_deadline") or "-",
            p["id"],
        )
    _console().print(t)


@admin.command("sign")
@home_option
@click.argument("proposal_id")
@json_option
def admin_sign(home: Path, proposal_id: str, as_json: bool) -> None:
    """Sign proposal PROPOSAL_ID as this admin.

    \b
    Example:
        riskmesh admin sign --home ./pay-c 3f9a0c1d2e4b5a69
    """
    _print_proposal(_call(_client(home).admin_sign, proposal_id), as_json)


@admin.command("charter")
@home_option
@long_option
@json_option
def admin_charter(home: Path, long: bool, as_json: bool) -> None:
    """Show the current charter: members, roles, epochs, policy and versions.

    Member ids are shortened to 8 characters; --long (and --json) shows them
    whole, as `admin propose remove-member` accepts them (a name or a prefix
    of 4 or more characters works too).

    \b
    Example:
        riskmesh admin charter --home ./bank-a
        riskmesh admin charter --home ./bank-a --long
    """
    c = _call(_client(home).admin_charter)
    if as_json:
        click.echo(json.dumps(c, indent=2))
        return
    from rich.table import Table

    console = _console()
    console.print(
        f"{c['consortium']} charter version {c['version']} (quorum {c['quorum']}: "
        f"{c['quorum_size']} admins), epochs {[e['ep'] for e in c['epochs']]}, "
        f"anchor {_short(c['anchor'], long, 16)}"
    )
    t = Table("member", "id", "roles", "status", "endpoint")
    for m in c["members"]:
        status = m["status"] + (f" after seq {m['until_seq']}" if "until_seq" in m else "")
        t.add_row(m["name"], _short(m["id"], long), ",".join(m["roles"]), status, m["endpoint"])
    console.print(t)


# -- API keys, the audit trail, own reports, selftest -----------------------------------


class _OfflineKeys:
    """API keys and audit rows straight from the database of a node that is not
    running (the running node is always asked first: it caches its keys)."""

    def __init__(self, home: Path) -> None:
        from node.config import load_config
        from node.keys import KeyRing
        from node.store import SqliteStore

        self.store = SqliteStore(load_config(home).db_path)
        self.ring = KeyRing(self.store)

    def __enter__(self) -> _OfflineKeys:
        return self

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def _now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def _keys_call(home: Path, online: Any, offline: Any) -> Any:
    """``online(client)`` against the running node; if it is not running,
    ``offline(_OfflineKeys)`` on its database."""
    from node.client import ClientError

    try:
        return online(_client(home))
    except ClientError as e:
        if e.status != 0:
            fail(e.one_line())
    try:
        with _OfflineKeys(home) as off:
            return offline(off)
    except RiskmeshError as e:
        fail(f"{getattr(e, 'reason', 'error')}: {e}")


def _key_json(k: Any) -> dict[str, Any]:
    from node.core import rfc3339

    return dict(k.to_json(rfc3339))


@main.group()
def keys() -> None:
    """Scoped API keys for this member's platforms: create, list, rotate, revoke.

    Scopes: query (queries, watches and alerts), report (reports, retractions,
    sightings, disputes, appeals), watch, admin (charter administration, keys,
    audit). Every change is in the audit trail.
    """


@keys.command("create")
@home_option
@click.option("--name", required=True, help="A unique name for the key (shown in the audit).")
@click.option(
    "--scope",
    "scope",
    required=True,
    metavar="SCOPE[,SCOPE...]",
    help="Comma-separated scopes: query, report, watch, admin.",
)
@json_option
def keys_create(home: Path, name: str, scope: str, as_json: bool) -> None:
    """Make a new API key and print it once (only its hash is kept).

    \b
    Example:
        riskmesh keys create --home ./bank-a --name fraud-engine --scope query,report
    """
    scopes = [s.strip() for s in scope.split(",")]

    def offline(off: _OfflineKeys) -> dict[str, Any]:
        key, secret = off.ring.create(name, scopes, _now_ms())
        return {**_key_json(key), "key": secret}

    r = _keys_call(home, lambda c: c.key_create(name, scopes), offline)
    if as_json:
        click.echo(json.dumps(r))
        return
    click.echo(f"created key {r['name']} with scopes {','.join(r['scopes'])}; it is shown once:")
    click.echo(r["key"])


@keys.command("list")
@home_option
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@json_option
def keys_list(home: Path, show_all: bool, as_json: bool) -> None:
    """List API keys: name, scopes, created, last used (never the keys themselves).

    \b
    Example:
        riskmesh keys list --home ./bank-a
    """
    rows = _keys_call(
        home,
        lambda c: c.keys_list(revoked=show_all),
        lambda off: [_key_json(k) for k in off.ring.list(revoked=show_all)],
    )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table("name", "scopes", "created", "last used", "revoked")
    for k in rows:
        t.add_row(
            k["name"],
            ",".join(k["scopes"]),
            k["created"],
            k["last_used"] or "never",
            k["revoked"] or "-",
        )
    _console().print(t)


@keys.command("revoke")
@home_option
@click.argument("name")
@json_option
def keys_revoke(home: Path, name: str, as_json: bool) -> None:
    """Revoke the API key NAME; it stops working at once.

    \b
    Example:
        riskmesh keys revoke --home ./bank-a fraud-engine
    """
    r = _keys_call(
        home, lambda c: c.key_revoke(name), lambda off: _key_json(off.ring.revoke(name, _now_ms()))
    )
    click.echo(json.dumps(r) if as_json else f"revoked key {r['name']}")


@keys.command("rotate")
@home_option
@click.argument("name", default="cli")
@json_option
def keys_rotate(home: Path, name: str, as_json: bool) -> None:
    """Give the API key NAME a new secret with the same scopes; the old one stops
    working at once. NAME defaults to `cli`, the all-scope key in HOME/api-token,
    which is then rewritten (mode 0600).

    \b
    Example:
        riskmesh keys rotate --home ./bank-a
        riskmesh keys rotate --home ./bank-a fraud-engine
    """
    from node.keys import DEFAULT_KEY

    def offline(off: _OfflineKeys) -> dict[str, Any]:
        key, secret = off.ring.rotate(name, _now_ms())
        return {**_key_json(key), "key": secret}

    r = _keys_call(home, lambda c: c.key_rotate(name), offline)
    if name == DEFAULT_KEY:
        from node.config import load_config
        from node.home import write_private

        write_private(load_config(home).token_path, r["key"].encode())
        r = {k: v for k, v in r.items() if k != "key"}
        if as_json:
            click.echo(json.dumps(r))
        else:
            click.echo(f"rotated key {name}; the new key is in {home / 'api-token'}")
        return
    if as_json:
        click.echo(json.dumps(r))
        return
    click.echo(f"rotated key {name}; the new key is shown once:")
    click.echo(r["key"])


@main.command()
@home_option
@click.option("--after", type=click.IntRange(min=0), default=0, help="Rows after this id.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option(
    "--verify", is_flag=True, help="Check the whole hash chain; exit 1 at the first broken row."
)
@json_option
def audit(home: Path, after: int, limit: int, verify: bool, as_json: bool) -> None:
    """Show the audit trail: every local action with the API key that made it.

    Rows hold tokens and refs, never raw values. Each row carries the hash of
    the one before, so --verify finds a row edited or removed in the database.

    \b
    Example:
        riskmesh audit --home ./bank-a --limit 20
        riskmesh audit --home ./bank-a --verify
    """
    from node.audit import AuditRow, verify_chain

    def page(a: int, n: int) -> dict[str, Any]:
        def offline(off: _OfflineKeys) -> dict[str, Any]:
            rows = off.store.audit_rows(a, n)
            return {
                "audit": [AuditRow(*r).to_json() for r in rows],
                "next": rows[-1][0] if len(rows) == n else None,
            }

        return dict(_keys_call(home, lambda c: c.audit(a, n), offline))

    if verify:
        rows: list[AuditRow] = []
        cursor: int | None = 0
        while cursor is not None:
            p = page(cursor, 10_000)
            rows += [AuditRow.from_json(r) for r in p["audit"]]
            cursor = p["next"]
        n, broken = verify_chain(rows)
        if as_json:
            click.echo(json.dumps({"rows": len(rows), "intact": broken is None, "broken": broken}))
        elif broken is None:
            click.echo(f"audit trail intact: {n} row(s), hash chain verified")
        if broken is not None:
            fail(
                f"audit row {broken} does not match the hash chain: it (or the row before it) "
                f"was edited or removed in the database; {n} row(s) before it verified"
            )
        return
    p = page(after, limit)
    if as_json:
        click.echo(json.dumps(p, indent=2))
        return
    from rich.table import Table

    from node.core import rfc3339

    t = Table("id", "time", "key", "action", "detail")
    for r in p["audit"]:
        t.add_row(str(r["id"]), rfc3339(r["ts"]), r["actor"], r["action"], r["detail"])
    _console().print(t)


@main.group()
def reports() -> None:
    """This member's own live reports, from the node's sealed store of raw values."""


@reports.command("list")
@home_option
@long_option
@json_option
def reports_list(home: Path, long: bool, as_json: bool) -> None:
    """List this member's live reports: kind, category, severity, times, token
    (no raw values; see `reports export`).

    \b
    Example:
        riskmesh reports list --home ./bank-a
    """
    rows = _call(_client(home).own_reports)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    t = Table("kind", "category", "severity", "first reported", "expires", "epoch", "token")
    for r in rows:
        t.add_row(
            r["kind"],
            r["category"],
            str(r["severity"]),
            r["first_reported"],
            r["expires"],
            str(r["epoch"]),
            _short(r["token"], long, 12),
        )
    _console().print(t)
    click.echo(f"{len(rows)} live report(s)", err=True)


@reports.command("export")
@home_option
@click.option(
    "--out",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Where to write the CSV ('-', the default, is stdout).",
)
def reports_export(home: Path, out: Any) -> None:
    """Export this member's live reports with their raw values as CSV (columns
    kind,value,category,severity,ttl_days: what `report --file` reads back).
    The file holds raw identifiers: keep it as safe as the node.

    \b
    Example:
        riskmesh reports export --home ./bank-a --out our-reports.csv
    """
    import csv
    import datetime as dt

    rows = _call(_client(home).own_reports, values=True)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:  # after a key rotation a value is live under two epochs: keep one
        if r.get("value") is None:
            continue
        k = (r["kind"], r["value"])
        if k not in latest or r["epoch"] > latest[k]["epoch"]:
            latest[k] = r
    now = dt.datetime.now(dt.UTC)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["kind", "value", "category", "severity", "ttl_days"])
    for r in latest.values():
        expires = dt.datetime.fromisoformat(r["expires"].replace("Z", "+00:00"))
        days = max(1, -(-int((expires - now).total_seconds()) // 86_400))
        w.writerow([r["kind"], r["value"], r["category"], r["severity"], days])
    click.echo(f"exported {len(latest)} live report(s)", err=True)


@main.command()
@json_option
def selftest(as_json: bool) -> None:
    """Check this install's canonical forms and tokens against the consortium's
    worked examples (shipped in the package): two members agree only if both pass.

    \b
    Example:
        riskmesh selftest
    """
    from node.selftest import run_vectors

    report = run_vectors()
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(
            f"canonical forms v{report['canonical_version']}: {report['passed']} of "
            f"{report['total']} worked examples agree"
        )
        for f in report["failures"][:20]:
            click.echo(f"  FAIL {f}", err=True)
    if report["failures"]:
        sys.exit(1)


# -- watches and alerts -------------------------------------------------------------------


@main.group()
def watch() -> None:
    """Watch values: an alert comes when any member reports one, or retracts it.

    Every value queried is watched too, for alerts.recent_query_hours (72 by
    default). Read alerts with `riskmesh alerts`, the API or a webhook.
    """


@watch.command("add")
@home_option
@click.option("--kind", required=True, type=KIND_CHOICE, help="Indicator kind.")
@click.option("--value", required=True, help="The raw identifier (stays on this node).")
@click.option("--ref", default=None, help="Your own case id, given back in its alerts.")
@click.option(
    "--ttl-days", type=click.IntRange(1, 3650), default=None, help="Days to watch (default 365)."
)
@json_option
def watch_add(
    home: Path, kind: str, value: str, ref: str | None, ttl_days: int | None, as_json: bool
) -> None:
    """Watch a value; print its current verdict (adding a watch is also a retro-hunt).

    \b
    Example:
        riskmesh watch add --home ./shop-c --kind account --value alipay:payee_881 \\
            --ref order-7731
    """
    item: dict[str, Any] = {"kind": kind, "value": value}
    if ref is not None:
        item["ref"] = ref
    if ttl_days is not None:
        item["ttl_days"] = ttl_days
    r = _call(_client(home).watch, [item])
    if as_json:
        click.echo(json.dumps(r))
        return
    [v] = r["results"]
    click.echo(f"watching {kind}; now: {_describe(v)}")


@watch.command("remove")
@home_option
@click.option("--kind", required=True, type=KIND_CHOICE, help="Indicator kind.")
@click.option("--value", required=True, help="The raw identifier you watch.")
@click.option("--ref", default=None, help="Only the watch with this case id (default: all).")
@json_option
def watch_remove(home: Path, kind: str, value: str, ref: str | None, as_json: bool) -> None:
    """Stop watching a value (and stop watching its recent queries).

    \b
    Example:
        riskmesh watch remove --home ./shop-c --kind account --value alipay:payee_881
    """
    item: dict[str, Any] = {"kind": kind, "value": value}
    if ref is not None:
        item["ref"] = ref
    r = _call(_client(home).unwatch, [item])
    if as_json:
        click.echo(json.dumps(r))
    else:
        click.echo(f"removed {r['removed']} watch(es), {r['recent_queries']} recent query(ies)")


@watch.command("list")
@home_option
@json_option
def watch_list(home: Path, as_json: bool) -> None:
    """Count the watches by kind and list their refs (never their values).

    \b
    Example:
        riskmesh watch list --home ./shop-c
    """
    c = _client(home)
    first = _call(c.watches)
    rows = list(first["watches"])
    page = first
    while page["next"] is not None:
        page = _call(c.watches, after=page["next"])
        rows += page["watches"]
    if as_json:
        click.echo(json.dumps({**first, "watches": rows, "next": None}, indent=2))
        return
    kinds = ", ".join(f"{k} {n}" for k, n in first["by_kind"].items()) or "none"
    click.echo(
        f"{first['watching']} watches ({kinds}); {first['recent_queries']} values queried in "
        f"the last {first['recent_query_hours']} h are watched too"
    )
    for w in rows:
        click.echo(f"{w['id']}\t{w['kind']}\t{w['ref'] or '-'}\tuntil {w['expires']}")


@main.command("alerts")
@home_option
@click.option("--after", type=click.IntRange(min=0), default=0, help="Show alerts after this id.")
@click.option("--follow", is_flag=True, help="Keep waiting for new alerts until interrupted.")
@json_option
def alerts_command(home: Path, after: int, follow: bool, as_json: bool) -> None:
    """Show the alerts after an id, oldest first; --json prints one object per line.

    An alert says that a watched value (or one queried lately) was reported or
    retracted by a member. Remember the last id you handled and pass it with
    --after: nothing is lost or shown twice.

    \b
    Example:
        riskmesh alerts --home ./shop-c --after 41
        riskmesh alerts --home ./shop-c --follow --json
    """
    c = _client(home)
    try:
        while True:
            page = _call(c.alerts, after, limit=1000, wait=20.0 if follow else 0.0)
            for a in page["alerts"]:
                click.echo(json.dumps(a) if as_json else _describe_alert(a))
            after = page["next"]
            if not page["alerts"] and not follow:
                return
    except KeyboardInterrupt:
        return


def _describe_alert(a: dict[str, Any]) -> str:
    ref = f" ref={a['ref']}" if a.get("ref") else ""
    return (
        f"#{a['id']} {a['at']} {a['event'].upper()} {a['kind']} {a['value']}{ref} "
        f"({a['source']}, entry {a['entry']['seq']} of {a['entry']['log'][:8]}, "
        f"{a['latency_ms']} ms): {_describe(a['verdict'])}"
    )


@main.command()
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the nodes' homes in this directory for exploring afterwards.",
)
def demo(keep: Path | None) -> None:
    """Run a consortium of real nodes on loopback and walk through riskmesh.

    Three members found a consortium, one reports, gossip carries it, another
    member's platform gets a match, a fourth member is onboarded with two admin
    signatures, a retraction propagates; then every node stops.

    \b
    Example:
        riskmesh demo
        riskmesh demo --keep ./demo-homes
    """
    from node.demo import run_demo

    sys.exit(run_demo(keep))


# -- plugins: commands registered through the ``riskmesh.commands`` entry point group ----
#
# As datasette and flask plugins do: a package adds a command to `riskmesh` by
# declaring ``[project.entry-points."riskmesh.commands"] NAME = "module:command"``.
# The simulator registers `riskmesh sim` this way, so node/ never imports sim/.
# A plugin's module is imported only when its command is used.

PLUGIN_GROUP = "riskmesh.commands"


class _Plugin(click.Group):
    """A command group loaded from its entry point when first used."""

    def __init__(self, ep: metadata.EntryPoint, help: str) -> None:
        super().__init__(ep.name, help=help)
        self._ep = ep
        self._loaded: click.Command | None = None

    def _target(self) -> click.Command:
        if self._loaded is None:
            cmd = self._ep.load()
            if not isinstance(cmd, click.Command):
                raise click.ClickException(f"plugin {self._ep.value} is not a click command")
            self._loaded = cmd
        return self._loaded

    def list_commands(self, ctx: click.Context) -> list[str]:
        cmd = self._target()
        return cmd.list_commands(ctx) if isinstance(cmd, click.Group) else []

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = self._target()
        return cmd.get_command(ctx, name) if isinstance(cmd, click.Group) else None


PLUGIN_HELP = {"sim": "Simulate many real protocol engines (`riskmesh sim run`)."}

for _ep in metadata.entry_points(group=PLUGIN_GROUP):
    if _ep.name not in main.commands:
        main.add_command(_Plugin(_ep, PLUGIN_HELP.get(_ep.name, f"{_ep.name} (plugin)")))
