"""The demo: the simulated AWS estate (seeded into moto), the demo organization, its labelled,
invented costs, and its history simulated through the real scan and evaluation code
(simulation.py). It may import every app; nothing imports it."""


class NotTheDemo(ValueError):
    """Demo data is only ever written for the demo organization
    (settings.TAGSENSE_DEMO_ORG_SLUG)."""
