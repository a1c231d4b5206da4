"""The fraud taxonomy (v1): categories, severities and retraction reasons.

Drawn from the payment alliance's and regulators' own lists. The taxonomy is
part of the consortium contract; a new category is a new taxonomy version.
"""

from __future__ import annotations

__all__ = [
    "APPEAL_DECISIONS",
    "CATEGORIES",
    "DISPUTE_REASONS",
    "RETRACT_REASONS",
    "SEVERITY_MAX",
    "SEVERITY_MIN",
    "TAXONOMY_VERSION",
    "check_category",
    "check_reason",
    "check_severity",
]

from contracts.errors import PolicyViolation

TAXONOMY_VERSION = 1

CATEGORIES: tuple[str, ...] = (
    "telecom_fraud",
    "account_takeover",
    "money_mule",
    "fake_account_opening",
    "application_fraud",
    "multi_lending",
    "gang_loan_fraud",
    "card_cashout",
    "gambling",
    "promotion_abuse",
    "device_risk",
    "illegal_fundraising",
    "merchant_fraud",
    "money_laundering",
    "phishing",
    "other",
)

SEVERITY_MIN = 1
SEVERITY_MAX = 5

RETRACT_REASONS: tuple[str, ...] = (
    "false_positive",
    "appeal_upheld",
    "resolved",
    "duplicate",
    "other",
)

#: Why a member disputes another member's report (DESIGN §15).
DISPUTE_REASONS: tuple[str, ...] = (
    "false_positive",
    "legitimate_customer",
    "wrong_category",
    "other",
)

#: What a reporter decides on a data subject's appeal.
APPEAL_DECISIONS: tuple[str, ...] = ("upheld", "rejected")

_CATEGORY_SET = frozenset(CATEGORIES)
_REASON_SET = frozenset(RETRACT_REASONS)


def check_category(category: object) -> str:
    """Return ``category`` if it is in the taxonomy, else raise PolicyViolation."""
    if not isinstance(category, str) or category not in _CATEGORY_SET:
        raise PolicyViolation("unknown_category", f"unknown fraud category {category!r}")
    return category


def check_severity(severity: object) -> int:
    if (
        not isinstance(severity, int)
        or isinstance(severity, bool)
        or not SEVERITY_MIN <= severity <= SEVERITY_MAX
    ):
        raise PolicyViolation(
            "bad_severity", f"severity must be an integer {SEVERITY_MIN}..{SEVERITY_MAX}"
        )
    return severity


def check_reason(reason: object) -> str:
    if not isinstance(reason, str) or reason not in _REASON_SET:
        raise PolicyViolation(
            "unknown_reason",
            f"unknown retraction reason {reason!r}; expected one of {', '.join(RETRACT_REASONS)}",
        )
    return reason
