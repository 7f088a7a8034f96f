"""Phase timers for the storage path, without editing inventory/: wrappers around the module
functions upsert_page_pg calls, a Django execute wrapper that sorts each SQL statement into a
phase, and timers around COPY blocks and COMMIT. Overhead: two perf_counter calls per wrapped
call (about 0.3 us), a few per statement."""

from __future__ import annotations

import contextlib
import functools
import time
from collections import defaultdict

# Statement prefix (whitespace squeezed) -> phase. First match wins.
SQL_PHASES = (
    ("CREATE TEMPORARY TABLE IF NOT EXISTS tagsense_stage_resource", "resource stage DDL"),
    ("TRUNCATE tagsense_stage_resource", "resource stage DDL"),
    ("CREATE TEMPORARY TABLE IF NOT EXISTS tagsense_stage_event", "event stage DDL"),
    ("TRUNCATE tagsense_stage_event", "event stage DDL"),
    ("CREATE TEMPORARY TABLE IF NOT EXISTS tagsense_stage_edge", "edge stage DDL"),
    ("TRUNCATE tagsense_stage_edge", "edge stage DDL"),
    ("SELECT r.id, r.arn, r.tags", "classify"),
    ("INSERT INTO inventory_resource", "upsert"),
    ("UPDATE inventory_resource r SET last_seen", "touch"),
    ("INSERT INTO inventory_tagevent", "event INSERT SQL"),
    ('INSERT INTO "inventory_tagevent"', "event INSERT SQL"),
    ("DELETE FROM inventory_edge", "edge DELETE SQL"),
    ('DELETE FROM "inventory_edge"', "edge DELETE SQL"),
    ("INSERT INTO inventory_edge", "edge INSERT SQL"),
    ('INSERT INTO "inventory_edge"', "edge INSERT SQL"),
    ('SELECT "inventory_resource"."id" AS "pk", "inventory_resource"."arn"', "mark-missing SELECT"),
    ('UPDATE "inventory_resource" SET "deleted_at"', "mark-missing UPDATE"),
    ("SELECT coalesce(current_setting", "tenant_scope set_config"),
    ("SELECT set_config", "tenant_scope set_config"),
)
COPY_PHASES = (
    ("COPY tagsense_stage_resource", "resource COPY (gross)"),
    ("COPY tagsense_stage_event", "event COPY"),
    ("COPY tagsense_stage_edge", "edge COPY"),
)


class Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.in_resource_copy = False
        self._undo: list = []

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds
        self.calls[name] += 1

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)

    def since(self, snapshot: dict[str, float]) -> dict[str, float]:
        return {k: v - snapshot.get(k, 0.0) for k, v in self.seconds.items()}

    @contextlib.contextmanager
    def span(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def _wrap_attr(self, owner, attr: str, name) -> None:
        """Time every call of owner.attr; `name` is a phase name or a callable giving one."""
        if not hasattr(owner, attr):
            return
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(name() if callable(name) else name, time.perf_counter() - start)

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def _sql(self, execute, sql, params, many, context):
        text = " ".join(str(sql).split())
        name = "other SQL"
        for prefix, phase in SQL_PHASES:
            if text.startswith(prefix):
                name = phase
                break
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.add(name, time.perf_counter() - start)

    @contextlib.contextmanager
    def installed(self):
        """Instrument storage for the duration of the block."""
        from django.db import connection
        from django.db.backends import utils
        from django.db.models import QuerySet

        from inventory import storage

        self._wrap_attr(storage, "fingerprint", "fingerprint")
        # Newer storage encodes tags/config once, for the COPY and the fingerprint together.
        self._wrap_attr(storage, "encode", "encode")
        self._wrap_attr(
            storage,
            "_json",
            lambda: (
                "serialise resource tags/config"
                if self.in_resource_copy
                else "serialise event changes/tags"
            ),
        )
        self._wrap_attr(storage, "diff_tags", "diff_tags")
        self._wrap_attr(storage, "_copy_events", "events total")
        self._wrap_attr(storage, "_copy_edges", "edges total")
        self._wrap_attr(storage, "_replace_edges", "edges total")  # the ORM path, if used
        original_bulk_create = QuerySet.bulk_create

        def bulk_create(qs, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original_bulk_create(qs, *args, **kwargs)
            finally:
                self.add(f"{qs.model.__name__} bulk_create", time.perf_counter() - start)

        QuerySet.bulk_create = bulk_create
        self._undo.append((QuerySet, "bulk_create", original_bulk_create))

        phases = self

        @contextlib.contextmanager
        def copy(cursor_wrapper, statement, *args, **kwargs):
            name = "other COPY"
            for prefix, phase in COPY_PHASES:
                if str(statement).startswith(prefix):
                    name = phase
            phases.in_resource_copy = name == "resource COPY (gross)"
            start = time.perf_counter()
            try:
                with cursor_wrapper.cursor.copy(statement, *args, **kwargs) as copier:
                    yield copier
            finally:
                phases.in_resource_copy = False
                phases.add(name, time.perf_counter() - start)

        utils.CursorWrapper.copy = copy
        self._undo.append((utils.CursorWrapper, "copy", None))

        connection.ensure_connection()
        original_commit = connection.commit

        def commit():
            start = time.perf_counter()
            try:
                return original_commit()
            finally:
                phases.add("COMMIT", time.perf_counter() - start)

        connection.commit = commit
        try:
            with connection.execute_wrapper(self._sql):
                yield self
        finally:
            del connection.commit
            for owner, attr, original in reversed(self._undo):
                if original is None:
                    delattr(owner, attr)
                else:
                    setattr(owner, attr, original)
            self._undo.clear()

    def report(self, total: float, resources: int, title: str, seconds=None) -> str:
        """A table of the page-storing loop's phases; indented rows are parts of the row above."""
        s = self.seconds if seconds is None else seconds

        def g(*names: str) -> float:
            return sum(s.get(name, 0.0) for name in names)

        copy_net = g("resource COPY (gross)") - g(
            "fingerprint", "encode", "serialise resource tags/config"
        )
        events, edges = g("events total"), g("edges total")
        event_parts = ("event stage DDL", "event COPY", "event INSERT SQL", "TagEvent bulk_create")
        edge_parts = ("edge stage DDL", "edge DELETE SQL", "edge COPY", "edge INSERT SQL")
        rows: list[tuple[str, float]] = [
            ("record generation (bench generator)", g("record generation")),
            ("fingerprint (json.dumps sorted + sha1)", g("fingerprint")),
            ("serialise tags/config for the COPY", g("serialise resource tags/config")),
            ("encode (tags/config JSON once + sha1)", g("encode")),
            ("COPY resources into stage (net)", copy_net),
            ("resource stage DDL + TRUNCATE", g("resource stage DDL")),
            ("classify (SELECT changed rows)", g("classify")),
            ("upsert (INSERT .. ON CONFLICT)", g("upsert")),
            ("touch (UPDATE last_seen)", g("touch")),
            ("diff_tags", g("diff_tags")),
            ("serialise TagEvent changes/tags", g("serialise event changes/tags")),
            ("TagEvents (_copy_events)", events),
            ("  stage DDL + TRUNCATE", g("event stage DDL")),
            ("  COPY", g("event COPY")),
            ("  INSERT .. SELECT", g("event INSERT SQL")),
            ("  rest", events - g(*event_parts)),
            ("edges (_copy_edges)", edges),
            ("  DELETE", g("edge DELETE SQL")),
            ("  stage DDL + TRUNCATE", g("edge stage DDL")),
            ("  COPY", g("edge COPY")),
            ("  INSERT .. SELECT", g("edge INSERT SQL")),
            ("  rest", edges - g(*edge_parts)),
            ("tenant_scope set_config", g("tenant_scope set_config")),
            ("COMMIT (deferred FK checks run here)", g("COMMIT")),
            ("other SQL", g("other SQL")),
        ]
        top_level = sum(t for name, t in rows if not name.startswith("  "))
        rows.append(("rest (Python in upsert_page_pg, the loop)", total - top_level))
        lines = [f"phase breakdown: {title} ({resources:,} resources, {total:.2f} s wall)"]
        for name, secs in rows:
            share = 100 * secs / total if total else 0.0
            per = 1e6 * secs / resources if resources else 0.0
            lines.append(f"  {name:<42} {secs:9.2f} s {share:6.1f} % {per:8.1f} us/res")
        return "\n".join(lines)
