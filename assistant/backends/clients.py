"""The SDK backends' common part: their configuration, and SDK clients made once per
configuration and reused. Building a client loads the system's CA certificates into a new SSL
context (about 55 ms here), more than the portal may add to the time to the first token. The
clients are thread-safe (httpx connection pools)."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any

from tagsense import outbound

from .base import Request
from .errors import as_provider_error

_clients: dict[tuple, Any] = {}
_lock = threading.Lock()
_MAX = 64


def shared(kind: str, api_key: str, base_url: str | None, timeout: float, make: Callable[[], Any]):
    """The client of this configuration, made by `make` the first time. The key is held only
    as a digest."""
    key = (kind, hashlib.sha256(api_key.encode()).hexdigest(), base_url, timeout)
    with _lock:
        client = _clients.get(key)
        if client is None:
            if len(_clients) >= _MAX:  # settings changed often: start again
                _clients.clear()
            client = _clients[key] = make()
        return client


def pinned_transport() -> Any:
    """The SDK clients' transport: every connection goes to an address checked by
    tagsense.outbound (policy PRIVATE_ALLOWED) when it is made, so a provider's host name
    that resolves, or comes to resolve (DNS rebinding), to the instance-metadata service is
    refused. No proxy from the environment is used."""

    return outbound.pinned_httpx_transport(outbound.PRIVATE_ALLOWED)


class SdkBackend(ABC):
    """A configured provider reached through an SDK: `name` names it in answers and the audit
    log; `base_url` None means the provider's own API. Subclasses set `kind` and build their
    SDK client in make_client(); _client() shares it per configuration."""

    kind = ""

    def __init__(
        self,
        *,
        name: str,
        model: str,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name, self.model = name, model
        self._api_key, self._base_url, self._timeout = api_key, base_url, timeout

    @abstractmethod
    def make_client(self) -> Any:
        """A new SDK client for this configuration."""

    def _client(self) -> Any:
        return shared(self.kind, self._api_key, self._base_url, self._timeout, self.make_client)

    @contextlib.contextmanager
    def _reading(self, request: Request, create: Callable[[], Any]) -> Iterator[Any]:
        """The SDK stream `create` opens, for the block to read: every SDK failure, when it
        opens or while it is read, becomes a ProviderError; a stop (request.cancel) closes it
        from the watching thread; and it is closed when the block ends, also when the
        consumer stops early (the upstream request ends)."""
        try:
            stream = create()
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a ProviderError
            raise as_provider_error(exc, self.name) from exc
        if request.cancel is not None:
            request.cancel.watch(stream)
        try:
            yield stream
        except GeneratorExit:
            raise
        except Exception as exc:  # noqa: BLE001
            raise as_provider_error(exc, self.name) from exc
        finally:
            if request.cancel is not None:
                request.cancel.forget(stream)
            stream.close()
