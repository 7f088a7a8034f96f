"""Evaluation of rules into findings (step 3 of the policies issue: not built yet)."""

from __future__ import annotations


def evaluate_rules(organization, rules) -> dict[str, int]:
    return {}


def delete_findings_of(rule) -> int:
    return 0
