"""Tags with realistic hygiene: per application the right values (plan.APPS), spoiled per a
shuffled deck of cards (60% fully tagged, 13% never tagged, the rest case-variant keys,
misspelt values or missing keys), and the shapes AWS APIs take tags in."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from .plan import APPS, AccountPlan

REQUIRED_KEYS = ("Owner", "Environment", "CostCenter", "Application", "DataClassification")

# Tag hygiene: a shuffled deck of 100 cards per account, so the shares hold even for a small
# estate: 60% fully tagged, 13% never tagged, the rest sloppy.
HYGIENE = (("full", 60), ("case-variant", 9), ("misspelt", 8), ("partial", 10), ("untagged", 13))
KEY_VARIANTS = {
    "Owner": ("owner", "OWNER"),
    "Environment": ("env", "environment", "ENV", "Env"),
    "CostCenter": ("costcenter", "cost-center", "COSTCENTER"),
    "Application": ("application", "app", "App"),
    "DataClassification": ("dataclassification", "data-classification"),
}
VALUE_MISSPELLINGS = {
    "prod": ("prdo", "Prodution", "prod ", "Production"),
    "staging": ("stagign", "Staging", "stage"),
    "dev": ("dvelopment", "Dev", "devel"),
    "confidential": ("confidental", "Confidential"),
    "internal": ("interal", "Internal"),
    "restricted": ("restricetd",),
    "public": ("pubic", "Public"),
}


class Tagger:
    """Tags for one account's resources: coherent per application, sloppy per the deck."""

    def __init__(self, rng: random.Random, plan: AccountPlan):
        self.rng = rng
        self.plan = plan
        self.deck: list[str] = []
        self.hygiene: Counter[str] = Counter()

    def environment(self) -> str:
        values, weights = zip(*self.plan.environments, strict=True)
        return self.rng.choices(values, weights)[0]

    def card(self) -> str:
        if not self.deck:
            self.deck = [name for name, count in HYGIENE for _ in range(count)]
            self.rng.shuffle(self.deck)
        return self.deck.pop()

    def tags(self, app: str, environment: str | None = None, name: str = "") -> dict[str, str]:
        """One resource's tags: the app's correct tags, spoiled per the next card."""
        owner, cost_center, classification = APPS[app]
        correct = {
            "Owner": owner,
            "Environment": environment or self.environment(),
            "CostCenter": cost_center,
            "Application": app,
            "DataClassification": classification,
        }
        card = self.card()
        self.hygiene[card] += 1
        rng = self.rng
        if card == "untagged":
            return {}
        if card == "case-variant":
            renamed = set(rng.sample(REQUIRED_KEYS, rng.randint(1, 2)))
            tags = {
                (rng.choice(KEY_VARIANTS[key]) if key in renamed else key): value
                for key, value in correct.items()
            }
        elif card == "misspelt":
            tags = dict(correct)
            key = "Environment" if rng.random() < 0.75 else "DataClassification"
            tags[key] = rng.choice(VALUE_MISSPELLINGS[tags[key]])
        elif card == "partial":
            dropped = set(rng.sample(REQUIRED_KEYS, rng.randint(1, 3)))
            tags = {key: value for key, value in correct.items() if key not in dropped}
        else:
            tags = correct
        return {"Name": name, **tags} if name else tags


def tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict]:
    return [{key: k, value: v} for k, v in tags.items()]


def spec(resource_type: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    """EC2 TagSpecifications for one resource type; none for no tags."""
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}] if tags else []


def optional_tags(
    tags: dict[str, str],
    parameter: str = "Tags",
    key: str = "Key",
    value: str = "Value",
    mapping: bool = False,
) -> dict[str, Any]:
    """The create call's tags argument, left out for an untagged resource."""
    if not tags:
        return {}
    return {parameter: dict(tags) if mapping else tag_list(tags, key, value)}
