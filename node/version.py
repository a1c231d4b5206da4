"""This build's version, as ``riskmesh status``, ``/v1/status``, ``/healthz``, the
``riskmesh_build_info`` metric and the gossip hello tell it."""

from __future__ import annotations

import platform
from importlib import metadata

from contracts.indicators import CANON_VERSION

__all__ = ["CANON_VERSION", "SOFTWARE", "VERSION", "version_info"]


def _version() -> str:
    try:
        return metadata.version("riskmesh")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


VERSION = _version()
#: What this node names itself in the gossip hello.
SOFTWARE = f"riskmesh/{VERSION}"


def version_info() -> dict[str, object]:
    """The version block of ``/v1/status``."""
    return {
        "riskmesh": VERSION,
        "canonical_forms": CANON_VERSION,
        "python": platform.python_version(),
    }
