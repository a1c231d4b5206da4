"""The `riskmesh` command line (click). Commands are thin: parse, call, print."""

from __future__ import annotations

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="riskmesh")
def main() -> None:
    """riskmesh: share keyed-hash fraud blacklists between consortium members."""


@main.command()
def demo() -> None:
    """Walk through reporting, replication checks, a query and a retraction.

    \b
    Example:
        riskmesh demo
    """
    from node.demo import run_demo

    sys.exit(run_demo())
