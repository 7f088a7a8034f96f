"""The append-only, hash-chained audit log. `audit.record(...)` is its only writer."""


def record(*args, **kwargs):
    from .services import record as _record

    return _record(*args, **kwargs)
