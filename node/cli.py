"""The `riskmesh` command line (click). Commands are thin: parse, call, print.

Exit status is 0 on success, non-zero with a one-line reason on stderr otherwise.
"""

from __future__ import annotations

import csv
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import click

from contracts.errors import RiskmeshError

HOME_HELP = "The node's home directory (config, keys, database)."


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

    \b
    Example:
        riskmesh serve --home ./bank-a
    """
    from node.server import run

    try:
        run(home)
    except RiskmeshError as e:
        fail(str(e))


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


@main.command()
@home_option
@click.option("--kind", required=True, help="Indicator kind: phone, email, device, ...")
@click.option("--value", required=True, help="The raw identifier (stays on this node).")
@click.option("--category", required=True, help="Fraud category from the taxonomy.")
@click.option("--severity", type=int, default=3, show_default=True, help="1 (low) .. 5 (high).")
@click.option("--ttl-days", type=int, default=None, help="Days until the report expires.")
@click.option("--ref", default=None, help="Your own case id (opaque to others).")
@json_option
def report(
    home: Path,
    kind: str,
    value: str,
    category: str,
    severity: int,
    ttl_days: int | None,
    ref: str | None,
    as_json: bool,
) -> None:
    """Report one indicator to the running node.

    \b
    Example:
        riskmesh report --home ./bank-a --kind phone --value "+86 138 0013 8000" \\
            --category telecom_fraud --severity 4
    """
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
@click.option("--kind", required=True, help="Indicator kind.")
@click.option("--value", required=True, help="The raw identifier you reported.")
@click.option(
    "--reason", required=True, help="false_positive, appeal_upheld, resolved, duplicate or other."
)
@json_option
def retract(home: Path, kind: str, value: str, reason: str, as_json: bool) -> None:
    """Retract this member's own report of an indicator.

    \b
    Example:
        riskmesh retract --home ./bank-a --kind phone --value 13800138000 --reason appeal_upheld
    """
    r = _call(_client(home).retract, [{"kind": kind, "value": value, "reason": reason}])
    click.echo(json.dumps(r) if as_json else f"retracted: entry seq {r['entry']['seq']}")


@main.command()
@home_option
@click.option("--kind", help="Indicator kind (single query).")
@click.option("--value", help="The identifier to check (single query).")
@click.option(
    "--file",
    "csv_file",
    type=click.File("r"),
    help="CSV with columns kind,value for a batch ('-' for stdin).",
)
@json_option
def query(home: Path, kind: str | None, value: str | None, csv_file: Any, as_json: bool) -> None:
    """Check indicators against every member's reports, locally.

    \b
    Example:
        riskmesh query --home ./shop-c --kind phone --value 13800138000
        riskmesh query --home ./shop-c --file suspects.csv --json
    """
    if csv_file is not None:
        rows = list(csv.DictReader(csv_file))
        if rows and not {"kind", "value"} <= set(rows[0]):
            fail("the CSV needs a header with columns kind,value")
        items = [{"kind": r["kind"], "value": r["value"]} for r in rows]
    elif kind and value is not None:
        items = [{"kind": kind, "value": value}]
    else:
        fail("give --kind and --value, or --file")
    results = _call(_client(home).query, items)
    if as_json:
        click.echo(json.dumps(results if csv_file is not None else results[0]))
        return
    for item, r in zip(items, results, strict=True):
        click.echo(f"{item['kind']}\t{_describe(r)}")


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
@json_option
def status(home: Path, as_json: bool) -> None:
    """Show the node's member, charter, members with feed heads, index, epochs and peers.

    Per peer: the last successful gossip exchange, failures and back-off,
    quarantine, and the lag in entries each way as the peer last told.

    \b
    Example:
        riskmesh status --home ./bank-a
    """
    s = _call(_client(home).status)
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    c = s.get("charter") or {}
    console = Console()
    console.print(
        f"member {s['member'].get('name', '?')} {s['member']['id'][:8]}; consortium "
        f"{c.get('consortium', '-')} charter v{c.get('version', '-')}; epochs "
        f"{s['epochs']}; index {s['index']['count']} tokens"
    )
    t = Table("member", "id", "status", "roles", "head seq", "head time")
    for m in s["members"]:
        h = m["head"] or {}
        t.add_row(
            m["name"],
            m["id"][:8],
            m["status"],
            ",".join(m["roles"]),
            str(h.get("seq", 0)),
            h.get("ts", "-"),
        )
    console.print(t)
    peers = s.get("peers") or []
    if peers:
        p = Table(
            "peer", "last success", "exchanges", "failures", "backing off until", "lag", "invalid"
        )
        for row in peers:
            lag = row.get("lag")
            p.add_row(
                row["name"],
                row["last_success"] or "never",
                str(row["exchanges"]),
                f"{row['failures']} ({row['consecutive_failures']} in a row)",
                row["backoff_until"] or row["quarantined_until"] or "-",
                "-" if lag is None else f"we lack {lag['we_lack']}, they lack {lag['they_lack']}",
                str(row["invalid"]) + (" QUARANTINED" if row["quarantined_until"] else ""),
            )
        console.print(p)


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
    click.echo(
        f"version {view['version']}: {'; '.join(view['changes'])}\n"
        f"signed by {', '.join(view['signers'])} ({len(view['signers'])} of {view['needed']} "
        f"needed), {view['status']}; proposal {view['id']}"
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
@click.argument("member_id")
@json_option
def propose_remove_member(home: Path, member_id: str, as_json: bool) -> None:
    """Propose removing member MEMBER_ID (its entries after its current head are
    refused everywhere), with a key rotation in the same version.

    \b
    Example:
        riskmesh admin propose remove-member --home ./bank-a g2bep2g6pkvzvfol...
    """
    _print_proposal(_call(_client(home).admin_propose, "remove-member", member=member_id), as_json)


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
    from rich.console import Console
    from rich.table import Table

    t = Table("version", "status", "changes", "signed by", "needed", "takes effect")
    t.add_column("id", no_wrap=True)
    for p in props:
        t.add_row(
            str(p["version"]),
            p["status"],
            "\n".join(p["changes"]),
            ", ".join(p["signers"]),
            str(p["needed"]),
            p.get("effective", "-"),
            p["id"],
        )
    Console().print(t)


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
@json_option
def admin_charter(home: Path, as_json: bool) -> None:
    """Show the current charter: members, roles, epochs, policy and versions.

    \b
    Example:
        riskmesh admin charter --home ./bank-a
    """
    c = _call(_client(home).admin_charter)
    if as_json:
        click.echo(json.dumps(c, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"{c['consortium']} charter version {c['version']} (quorum {c['quorum']}: "
        f"{c['quorum_size']} admins), epochs {[e['ep'] for e in c['epochs']]}, "
        f"anchor {c['anchor'][:16]}"
    )
    t = Table("member", "id", "roles", "status", "endpoint")
    for m in c["members"]:
        status = m["status"] + (f" after seq {m['until_seq']}" if "until_seq" in m else "")
        t.add_row(m["name"], m["id"][:8], ",".join(m["roles"]), status, m["endpoint"])
    console.print(t)


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
