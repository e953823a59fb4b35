"""Connecting to a Ray cluster, and what to say when its nodes cannot load the evaluation.

Ray is imported on first use (it is an optional dependency).
"""

from __future__ import annotations

import importlib
import os
import re
import socket
import time
from typing import Any

__all__ = ["connect", "load_error"]


def _ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError as e:
        raise ImportError(f"executor='ray' needs Ray: pip install 'symbolic-nas[ray]' ({e})") from e


def connect(address: str, *, timeout: float = 30.0, **init_kwargs: Any) -> None:
    """Connects this process to the Ray cluster at ``address`` (``HOST:PORT`` of its head).

    It first waits up to ``timeout`` seconds for something to accept connections there,
    so a wrong address fails fast and says so, then calls ``ray.init(address=...)``.
    With token authentication (Ray's default for clusters that have a token), the token
    must reach this process as on every node: ``RAY_AUTH_MODE=token`` and the token in
    ``~/.ray/auth_token``, ``RAY_AUTH_TOKEN_PATH`` or ``RAY_AUTH_TOKEN``.

    Args:
        address: The head's ``HOST:PORT`` (``ray start --head --port=PORT``).
        timeout: Seconds to wait for the head to answer.
        **init_kwargs: More arguments of ``ray.init`` (``runtime_env=...``).

    Raises:
        ConnectionError: No cluster answers at ``address`` within ``timeout`` seconds, or
            Ray cannot connect to it (without the cluster's token, say).
        ValueError: ``address`` is not ``HOST:PORT``.

    Example:
        >>> connect("127.0.0.1:1", timeout=0.1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ConnectionError: no Ray cluster answers at '127.0.0.1:1': ...
    """
    host, _, port = address.rpartition(":")
    if address.startswith("ray://") or not host or not port.isdigit():
        raise ValueError(
            f"`address` must be HOST:PORT of a Ray head node (ray start --head --port=PORT), "
            f"but got {address!r}"
        )
    started = time.monotonic()
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=2.0):
                break
        except OSError as e:
            waited = time.monotonic() - started
            if waited >= timeout:
                raise ConnectionError(
                    f"no Ray cluster answers at {address!r}: nothing accepted a connection "
                    f"there in {waited:.1f} s ({e}); start its head with "
                    f"`ray start --head --port={port}`, or check the address and the firewall"
                ) from None
            time.sleep(min(0.5, max(0.0, timeout - waited)))
    try:
        _ray().init(address=address, **init_kwargs)
    except ConnectionError as e:  # Ray says only that it failed: most often, the token.
        mode = os.environ.get("RAY_AUTH_MODE")
        raise ConnectionError(
            f"the head at {address!r} answers, but Ray could not connect ({e}). A cluster "
            "with token authentication needs RAY_AUTH_MODE=token and its token in this "
            "process too (~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN; here "
            f"RAY_AUTH_MODE is {mode!r}); see the README's Distributed section"
        ) from e


def load_error(error: BaseException) -> str:
    """Why actors cannot load the evaluation, naming a module the nodes cannot import."""
    missing = re.search(r"No module named '([^']+)'", str(error))
    if missing is None:
        return f"Ray actors cannot load the evaluation: {error}"
    return (
        f"Ray actors cannot load the evaluation: the module {missing.group(1)!r} cannot be "
        "imported on the Ray nodes (the space or the evaluator uses it). Install it on every "
        "node, or ship it with the job: ray.init(address=..., runtime_env={'working_dir': "
        "'.'}) or runtime_env={'py_modules': [module]}.\nRay said: "
        + str(error).strip().splitlines()[-1]
    )
