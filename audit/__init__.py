"""The append-only, hash-chained audit log. `audit.record(...)` is its only writer."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .services import record as record
else:

    def record(*args: Any, **kwargs: Any) -> Any:
        # Imported when first called: the package is imported while the apps load, before its
        # models may be.
        from .services import record as _record  # noqa: PLC0415 - the package loads before its models

        return _record(*args, **kwargs)
