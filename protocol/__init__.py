"""The mechanics of riskmesh, sans-IO: tokens, envelopes, feeds, charter chain.

Nothing here touches a socket, a file, a clock or module-level randomness:
time (``now``, integer milliseconds) and randomness (``random.Random``) are
arguments, so the node and the simulator drive the same code.
"""

from protocol.charter_chain import CharterChain, CharterVersion, decode_charter, sign_charter
from protocol.codec import dumps, loads, obj_hash
from protocol.entries import AddOp, Entry, RetractOp, build_entry, decode_entry
from protocol.feeds import Feeds, Offer
from protocol.forks import ForkProof, decode_fork_proof
from protocol.grants import Grant, check_grant, decode_grant, make_grant, open_grant
from protocol.keys import MemberId, MemberKey, member_id_text, parse_member_id, short_id
from protocol.store import FeedStore, Head, IndicatorState, MemoryStore
from protocol.tokens import EpochKeys, Tokenizer, token

__all__ = [
    "AddOp",
    "CharterChain",
    "CharterVersion",
    "Entry",
    "EpochKeys",
    "FeedStore",
    "Feeds",
    "ForkProof",
    "Grant",
    "Head",
    "IndicatorState",
    "MemberId",
    "MemberKey",
    "MemoryStore",
    "Offer",
    "RetractOp",
    "Tokenizer",
    "build_entry",
    "check_grant",
    "decode_charter",
    "decode_entry",
    "decode_fork_proof",
    "decode_grant",
    "dumps",
    "loads",
    "make_grant",
    "member_id_text",
    "obj_hash",
    "open_grant",
    "parse_member_id",
    "short_id",
    "sign_charter",
    "token",
]
