"""Joining a Ray cluster: an address that nothing answers is a one-line error within seconds, not Ray's own
minutes of retries (``ray.init(address=...)`` waits for the cluster's GCS to appear)."""

from __future__ import annotations

import socket

from .errors import ParameterError


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Raise ``ParameterError`` (naming ``address``) when ``host:port`` (or ``ray://host:port``) does not accept a
    TCP connection within ``timeout_s``; ``auto`` and a bare word without a port are left to Ray."""
    where = address.split("://", 1)[-1]
    host, sep, port = where.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
            return
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if isinstance(exc, socket.timeout):
            why = f"no answer within {timeout_s:g} s"
    raise ParameterError("address", f"{address}: no Ray cluster answers there ({why}); start its head with "
                         "`ray start --head --port PORT` on that machine, or leave `address` out to start Ray here")


def init_ray(ray, address: str | None = None, **kwargs) -> None:
    """``ray.init`` at ``address`` (checked first) or a local Ray (``address`` None)."""
    if address:
        check_reachable(address)
    ray.init(address=address, **kwargs)


__all__ = ["check_reachable", "init_ray"]
