"""A plug: one function a lower app calls and a higher app provides at start-up (in its
AppConfig.ready), so the call goes up while every import goes down.

Used where a domain command offers a demo option: `import_costs --demo` calls
inventory.costs.DEMO_COSTS, provided by the demo app (demo/apps.py); inventory imports nothing
of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Plug:
    def __init__(self, what: str):
        self.what = what
        self._function: Callable[..., Any] | None = None

    def provide(self, function: Callable[..., Any]) -> None:
        """Called once, from the providing app's ready()."""
        self._function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._function is None:
            raise LookupError(f"no app provides {self.what} (is it in INSTALLED_APPS?)")
        return self._function(*args, **kwargs)
