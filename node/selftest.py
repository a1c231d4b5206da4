"""``riskmesh selftest``: this install's canonical forms and tokens against the
consortium's worked examples.

The examples (``contracts/vectors/identifiers.json``, shipped in the wheel; the
same file as ``tests/contracts/identifiers.json``) give inputs, their canonical
forms or a refusal, and their tokens under a fixed key. Two members' nodes,
built at different times, match each other's reports only if both pass.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from contracts.errors import InvalidValue
from contracts.indicators import CANON_VERSION, canonical
from protocol.tokens import EpochKeys

__all__ = ["load_vectors", "run_vectors"]


def load_vectors() -> dict[str, Any]:
    data = resources.files("contracts").joinpath("vectors/identifiers.json").read_text("utf-8")
    vectors: dict[str, Any] = json.loads(data)
    return vectors


def run_vectors(vectors: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check every example; failures are described without the example's input."""
    v = load_vectors() if vectors is None else vectors
    tk = EpochKeys({1: bytes.fromhex(v["key_hex"])}).tokenizer(1)
    failures: list[str] = []
    for i, case in enumerate(v["cases"]):
        kind, value = case["kind"], case["input"]
        try:
            canon = canonical(kind, value)
        except InvalidValue as e:
            if not case.get("error"):
                failures.append(f"example {i} ({kind}): refused ({e.rule}), expected accepted")
            continue
        except Exception as e:  # a canonicaliser may raise nothing but InvalidValue
            failures.append(f"example {i} ({kind}): raised {type(e).__name__}, a bug")
            continue
        if case.get("error"):
            failures.append(f"example {i} ({kind}): accepted, expected refused")
        elif canon != case["canonical"]:
            failures.append(f"example {i} ({kind}): canonical form differs")
        elif tk.token(kind, canon).hex() != case["token"]:
            failures.append(f"example {i} ({kind}): token differs")
    total = len(v["cases"])
    return {
        "canonical_version": CANON_VERSION,
        "total": total,
        "passed": total - len(failures),
        "failures": failures,
    }
