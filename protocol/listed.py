"""The tokens of warning-listed exact values, per epoch (DESIGN §15).

A feed entry carries tokens, not values, so a node recognises an entry adding
a warning-listed value by its token: it tokenises every exact value of the
shipped list and of the cited charter version's additions
(:meth:`contracts.policy.DataPolicy.warnings`) under the op's epoch key.
Every member holds the same keys and the same lists, so every honest node
refuses the same entries. :class:`WarningTokens` is the
:data:`protocol.feeds.ListedTokens` a node installs on its feeds.
"""

from __future__ import annotations

from collections.abc import Mapping

from contracts.charter import Charter
from protocol.tokens import Tokenizer

__all__ = ["WarningTokens"]


class WarningTokens:
    """Listed tokens per (epoch, charter additions), computed once, from ``keys``
    (a live mapping epoch -> key; an epoch whose key is missing answers None)."""

    def __init__(self, keys: Mapping[int, bytes]) -> None:
        self.keys = keys
        self._cache: dict[tuple[int, object], frozenset[bytes]] = {}

    def __call__(self, ep: int, charter: Charter) -> frozenset[bytes] | None:
        additions = tuple(sorted(charter.policy.warning_list.items()))
        hit = self._cache.get((ep, additions))
        if hit is not None:
            return hit
        key = self.keys.get(ep)
        if key is None:
            return None
        tk = Tokenizer(ep, key)
        toks = frozenset(tk.token(kind, v) for kind, v in charter.policy.warnings().exact_values())
        self._cache[(ep, additions)] = toks
        return toks

    def __repr__(self) -> str:
        return f"WarningTokens(epochs={sorted(ep for ep, _ in self._cache)})"
