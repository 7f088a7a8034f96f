import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def as_json(value: Any) -> str:
    """Event data as compact JSON text (auto-escaped by the template like any string)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
