"""Every download of the portal's data (CSV, YAML, JSON) goes through here: it is audited as
`export.download`, in the caller's transaction, with what was exported.

The event's data: `kind` (what: "inventory.resources", "policies.findings", ...), `format`,
`filters` (the query the caller gave, each value cut to 200 characters, control characters
removed) and `rows` (how many records the file holds; for a streamed CSV, how many the filters
matched when the download began). CSV files are written by tagsense.csvexport, which
neutralises cells a spreadsheet would run as formulas.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse

from tagsense.csvexport import csv_lines

from . import services
from .audit_events import EXPORT_DOWNLOAD

IGNORED_PARAMETERS = ("format", "page", "page_size", "cursor")
MAX_FILTER_LENGTH = 200


def _clean(value: Any) -> str:
    text = "".join(c for c in str(value) if c.isprintable() or c == " ")
    return text[:MAX_FILTER_LENGTH]


def describe_filters(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The filters of a request's query string, as the audit log keeps them."""
    if not params:
        return {}
    getlist = getattr(params, "getlist", None)
    described: dict[str, Any] = {}
    for name in sorted(params.keys()):
        if name in IGNORED_PARAMETERS:
            continue
        values = getlist(name) if getlist else [params[name]]
        cleaned = [_clean(v) for v in values][:20]
        described[_clean(name)] = cleaned[0] if len(cleaned) == 1 else cleaned
    return described


def record_export(
    kind: str, *, file_format: str, rows: int, filters: Mapping[str, Any] | None = None
) -> None:
    """Audit one export (the caller is inside its tenant transaction: the view's, the API's)."""
    services.record(
        EXPORT_DOWNLOAD,
        data={
            "kind": kind,
            "format": file_format,
            "filters": describe_filters(filters),
            "rows": rows,
        },
    )


def download(
    kind: str,
    *,
    content: str | bytes,
    content_type: str,
    filename: str,
    rows: int,
    filters: Mapping[str, Any] | None = None,
) -> HttpResponse:
    """A file (YAML, JSON, ...) as an attachment, audited."""
    record_export(kind, file_format=filename.rsplit(".", 1)[-1], rows=rows, filters=filters)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def csv_download(
    kind: str,
    *,
    header: Iterable[str],
    rows: Iterable[Iterable[Any]],
    count: int,
    filename: str,
    filters: Mapping[str, Any] | None = None,
) -> StreamingHttpResponse:
    """A CSV attachment written by tagsense.csvexport, audited. `rows` may be lazy (it is
    read as the response streams: the caller reopens its tenant scope inside it); `count`
    is how many rows it will hold."""
    record_export(kind, file_format="csv", rows=count, filters=filters)
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def jsonl_download(
    kind: str,
    *,
    records: Iterable[Mapping[str, Any]],
    count: int,
    filename: str,
    filters: Mapping[str, Any] | None = None,
) -> StreamingHttpResponse:
    """A JSON Lines attachment (one JSON object a line; a newline inside a value is escaped,
    so it never starts a line), audited. `records` may be lazy, as csv_download's rows."""
    record_export(kind, file_format="jsonl", rows=count, filters=filters)
    lines = (json.dumps(record, sort_keys=True) + "\n" for record in records)
    response = StreamingHttpResponse(lines, content_type="application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
