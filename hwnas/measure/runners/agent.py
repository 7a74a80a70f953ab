"""The agent: ``hwnas agent serve --port P`` on an edge board (Raspberry Pi, Jetson) measures models it is
sent over HTTP with the local runner and returns the measurement; ``AgentRunner`` is the client side.

Protocol (JSON over HTTP, stdlib only):

- ``GET /info`` -> ``{"hwnas": version, "fingerprint": {...}, "runtimes": {"onnxruntime": "1.x" | null, ...}}``
- ``POST /measure`` with ``{"model_b64", "format", "runtime", "threads", "delegate", "affinity",
  "protocol": {...}, "energy": {...}, "op_profile": bool}`` -> a ``RunResult`` as JSON, or
  ``{"error": "..."}`` with status 400 (bad request) / 422 (the model failed) / 401 (bad token).

One measurement runs at a time (a lock), so concurrent clients cannot disturb each other's timings. The
agent has no authentication beyond an optional shared token (``--token`` or ``$HWNAS_AGENT_TOKEN``, sent as
``X-Hwnas-Token``): run it on a trusted network only.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ...errors import HwnasError
from ..protocol import DeviceUnreachable, ProtocolSettings, RunResult, host_fingerprint

TOKEN_ENV = "HWNAS_AGENT_TOKEN"
MAX_MODEL_BYTES = 512 * 1024 * 1024


def _runtimes() -> dict:
    from ...runtimes import RUNTIMES, runtime_version

    out = {}
    for r in RUNTIMES:
        try:
            out[r] = runtime_version(r)
        except Exception:
            out[r] = None
    return out


class _Handler(BaseHTTPRequestHandler):
    server_version = "hwnas-agent"

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self) -> bool:
        token = self.server.token
        if token and self.headers.get("X-Hwnas-Token") != token:
            self._send(401, {"error": "bad or missing agent token (X-Hwnas-Token)"})
            return False
        return True

    def do_GET(self):  # noqa: N802
        if not self._authorised():
            return
        if self.path.rstrip("/") == "/info":
            from ... import __version__

            self._send(200, {"hwnas": __version__, "fingerprint": host_fingerprint(), "runtimes": _runtimes()})
        else:
            self._send(404, {"error": f"no such endpoint {self.path}"})

    def do_POST(self):  # noqa: N802
        if not self._authorised():
            return
        if self.path.rstrip("/") != "/measure":
            self._send(404, {"error": f"no such endpoint {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_MODEL_BYTES * 2:
                raise ValueError(f"bad Content-Length {length}")
            req = json.loads(self.rfile.read(length))
            model = base64.b64decode(req["model_b64"])
            fmt = req["format"]
            if fmt not in ("onnx", "tflite"):
                raise ValueError(f"format must be onnx or tflite, got {fmt!r}")
            protocol = ProtocolSettings(**(req.get("protocol") or {}))
        except (ValueError, KeyError, TypeError, HwnasError) as exc:
            self._send(400, {"error": f"bad request: {type(exc).__name__}: {exc}"})
            return
        from .local import measure_local

        with self.server.lock:
            with tempfile.TemporaryDirectory(prefix="hwnas-agent-") as tmp:
                path = Path(tmp) / f"model.{fmt}"
                path.write_bytes(model)
                try:
                    result = measure_local(path, req.get("runtime") or ("onnxruntime" if fmt == "onnx" else "litert"),
                                           threads=int(req.get("threads") or 1), delegate=req.get("delegate"),
                                           affinity=req.get("affinity"), protocol=protocol, energy=req.get("energy"),
                                           op_profile=bool(req.get("op_profile", True)),
                                           sysfs_root=self.server.sysfs_root, thermal=req.get("thermal"))
                except HwnasError as exc:
                    self._send(422, {"error": str(exc)})
                    return
                except Exception as exc:  # keep serving; report the failure to the client
                    self._send(500, {"error": f"{type(exc).__name__}: {exc}"})
                    return
        self._send(200, result.to_dict())


class AgentServer:
    """``AgentServer(host, port).serve_forever()``; ``start()`` serves from a thread (tests, notebooks)."""

    def __init__(self, host: str = "0.0.0.0", port: int = 8765, token: str | None = None,
                 sysfs_root: Path | None = None, verbose: bool = False):
        self.host, self.port = host, port
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.sysfs_root = sysfs_root
        self.verbose = verbose
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _make(self) -> ThreadingHTTPServer:
        try:
            httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        except OSError as exc:
            raise HwnasError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        httpd.daemon_threads = True
        httpd.token, httpd.sysfs_root, httpd.verbose = self.token, self.sysfs_root, self.verbose
        httpd.lock = threading.Lock()
        self._httpd = httpd
        self.port = httpd.server_address[1]
        return httpd

    def bind(self) -> "AgentServer":
        """Open the socket now (``port`` 0 picks a free one, readable as ``.port`` afterwards)."""
        if self._httpd is None:
            self._make()
        return self

    def serve_forever(self) -> None:
        httpd = self._httpd or self._make()
        try:
            httpd.serve_forever()
        finally:
            httpd.server_close()

    def start(self) -> "AgentServer":
        httpd = self._httpd or self._make()
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class AgentRunner:
    """Sends a model to a board's agent and gets its measurement back (connection type ``agent``)."""

    def __init__(self, token: str | None = None):
        self.token = token

    @staticmethod
    def _base(profile) -> str:
        c = profile.connection
        return f"http://{c['host']}:{int(c.get('port') or 8765)}"

    def _request(self, url: str, data: bytes | None, timeout: float, profile) -> dict:
        headers = {"Content-Type": "application/json"}
        token = self.token or os.environ.get(TOKEN_ENV)
        if token:
            headers["X-Hwnas-Token"] = token
        req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                msg = json.loads(exc.read()).get("error") or exc.reason
            except Exception:
                msg = exc.reason
            if exc.code == 401:
                raise DeviceUnreachable(f"device {profile.name}: agent at {url} refused: {msg}") from None
            raise HwnasError(f"device {profile.name}: agent at {url}: {msg}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeviceUnreachable(f"device {profile.name}: agent at {url} is not reachable ({reason}); "
                                    f"start it on the board with `hwnas agent serve --port "
                                    f"{profile.connection.get('port', 8765)}`") from None

    def info(self, profile, timeout: float = 3.0) -> dict:
        return self._request(self._base(profile) + "/info", None, timeout, profile)

    def reachable(self, profile) -> tuple[bool, str]:
        try:
            info = self.info(profile, timeout=2.0)
        except DeviceUnreachable as exc:
            reason = str(exc).split("(", 1)[-1].split(")")[0] if "(" in str(exc) else str(exc)
            return False, f"no answer from the agent at {self._base(profile)} ({reason})"
        except HwnasError as exc:
            return False, str(exc)
        fp = info.get("fingerprint", {})
        return True, f"agent {self._base(profile)} ({fp.get('host')}, {fp.get('cpu')})"

    def run(self, path: Path, profile, protocol: ProtocolSettings | None = None, op_profile: bool = True) -> RunResult:
        protocol = protocol or ProtocolSettings()
        path = Path(path)
        body = json.dumps({
            "model_b64": base64.b64encode(path.read_bytes()).decode(), "format": profile.format,
            "runtime": profile.runtime, "threads": profile.threads, "delegate": profile.delegate,
            "affinity": profile.affinity, "protocol": protocol.to_dict(), "energy": profile.energy,
            "op_profile": op_profile, "thermal": profile.thermal,
        }).encode()
        timeout = float(profile.connection.get("timeout_s") or 600)
        d = self._request(self._base(profile) + "/measure", body, timeout, profile)
        r = RunResult.from_dict(d)
        r.fingerprint = {**r.fingerprint, "via": f"agent {self._base(profile)}"}
        return r
