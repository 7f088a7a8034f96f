"""Reading a resource's tag history: its timeline, newest first, ending with its first sighting.

A first sighting is not stored (TagEvent's docstring): its tags are the tags after the oldest
stored event with that event's changes undone, or the resource's tags when nothing changed.
"""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Resource, TagEvent


def undo_changes(tags: dict[str, str], changes: list[dict]) -> dict[str, str]:
    """The tags before an event, from the tags after it and its changes."""
    before = dict(tags)
    for change in changes:
        if change.get("old") is None:
            before.pop(change["key"], None)
        else:
            before[change["key"]] = change["old"]
    return before


def timeline(resource: Resource, events: QuerySet[TagEvent], limit: int = 200) -> list[TagEvent]:
    """`events` (already restricted to what the member may see) of this resource, newest first,
    then an unsaved "discovered" event for its first sighting."""
    events = events.filter(resource=resource)
    newest = list(events.order_by("-seen_at", "-id")[:limit])
    if len(newest) < limit:
        oldest = newest[-1] if newest else None
    else:
        oldest = events.order_by("seen_at", "id").first()
    first_tags = undo_changes(oldest.tags, oldest.changes) if oldest else dict(resource.tags)
    discovered = TagEvent(
        organization_id=resource.organization_id,
        resource=resource,
        scan_id=resource.first_scan_id,
        seen_at=resource.first_seen,
        kind=TagEvent.DISCOVERED,
        changes=[],
        tags=first_tags,
    )
    return [*newest, discovered]
