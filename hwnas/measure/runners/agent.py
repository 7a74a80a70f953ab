"""The agent: ``hwnas agent serve --host ADDR --port P`` on an edge board (Raspberry Pi, Jetson) measures models it is
sent over HTTP with the local runner and returns the measurement; ``AgentRunner`` is the client side.

Protocol (JSON over HTTP, stdlib only):

- ``GET /info`` -> ``{"hwnas": version, "fingerprint": {...}, "runtimes": {"onnxruntime": "1.x" | null, ...}}``
- ``POST /measure`` with ``{"model_b64", "format", "runtime", "threads", "delegate", "affinity",
  "protocol": {...}, "energy": {...}, "op_profile": bool}`` -> a ``RunResult`` as JSON, or
  ``{"error": "..."}`` with status 400 (bad request) / 401 (bad token) / 411 (no Content-Length) /
  413 (body over the limit) / 422 (the model failed) / 500 (the agent failed) / 503 (every worker busy).

Safe by default (docs/security.md): it listens on 127.0.0.1 unless told otherwise, and refuses any other
address without a shared token (``$HWNAS_AGENT_TOKEN`` or ``--token-file``; sent as ``X-Hwnas-Token``, checked
on every endpoint). A request's Content-Length is checked against the limit before a byte of the body is read;
headers and body must arrive within a deadline (a read timeout, plus time for the body at 256 KiB/s); a body's
JSON is checked for depth and size before it is parsed (``check_json_shape``). At most ``workers`` connections
are served at once and one measurement runs at a time (a lock); up to ``BUSY_ANSWERS`` more are answered 503,
each in its own thread that then reads and discards the request, so the answer is not lost to a reset while the
client is still sending (likewise for refusals sent before a body is read: 401, 404, 413). ``AgentRunner``
retries a 503, a reset connection and a broken pipe with exponential back-off until its timeout.
Protocol settings are bounded (``max_time_s`` at most the agent's own cap), and energy settings that name
files (``sysfs_root``, ``supply``) come from the agent's command line only: a client sending them is refused.
"""

from __future__ import annotations

import base64
import hmac
import http.client
import ipaddress
import json
import math
import os
import random
import re
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ...errors import HwnasError, ParametersError
from ..protocol import ESTIMATORS, DeviceUnreachable, ProtocolSettings, RunResult, host_fingerprint
from ..thermal import ThermalStop

TOKEN_ENV = "HWNAS_AGENT_TOKEN"
DEFAULT_HOST = "127.0.0.1"
MAX_MODEL_BYTES = 96 * 1024 * 1024  # default cap on a model; its base64 JSON body is about 4/3 of it
READ_TIMEOUT_S = 10.0
MIN_UPLOAD_BPS = 256 * 1024  # a body may take read_timeout_s + its size at this rate, no longer
WORKERS = 4
BUSY_ANSWERS = 64  # connections answered 503 at once beyond the workers (each reads its request, then closes)
LISTEN_BACKLOG = 128  # connections the kernel holds until they are accepted (a burst waits, is not refused)
MAX_JSON_DEPTH = 32  # nesting of arrays / objects in a request body (a real request uses 3)
MAX_JSON_ITEMS = 10_000  # arrays, objects and their elements in a request body (a real request has about 30)
RETRY_FIRST_S, RETRY_MAX_S = 0.25, 8.0  # the client's back-off: a random pause in [d/2, d], d doubling to the max
MAX_TIME_S = 60.0  # cap on a client's protocol max_time_s and warmup_max_s
AGENT_SIDE_ENERGY = ("sysfs_root", "supply")  # name files on the agent: never taken from a client
# (lowest, highest) accepted per protocol setting; None: the agent's max_time_s
PROTOCOL_BOUNDS = {"rel_ci": (0.001, 0.5), "min_runs": (5, 10_000), "min_rounds": (1, 1_000),
                   "round_ms": (0.1, 10_000.0), "max_rounds": (1, 10_000), "max_time_s": (0.01, None),
                   "warmup_tol": (0.0, 1.0), "warmup_max_s": (0.0, None), "warmup_min_runs": (1, 1_000),
                   "max_round_runs": (1, 100_000), "energy_max_s": (0.01, None)}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name or a wildcard ('', '0.0.0.0' parse; other names may resolve anywhere)


def read_token_file(path) -> str:
    """The token in ``path`` (surrounding whitespace stripped); missing or empty files are errors."""
    try:
        token = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise HwnasError(f"cannot read agent token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not token:
        raise HwnasError(f"agent token file {path} is empty")
    return token


def resolve_token(token: str | None) -> str | None:
    """``token`` if given, else ``$HWNAS_AGENT_TOKEN``; an empty one is an error (it would disable auth)."""
    if token is None:
        token = os.environ.get(TOKEN_ENV)
        if token is not None and not token.strip():
            raise HwnasError(f"${TOKEN_ENV} is set but empty: set a token or unset it")
    if token is not None and not token.strip():
        raise HwnasError("the agent token is empty: an empty token would disable authentication")
    return token.strip() if token else None


def check_protocol(d, max_time_s: float = MAX_TIME_S) -> ProtocolSettings:
    """A client's protocol settings, each a finite number within ``PROTOCOL_BOUNDS``, as ProtocolSettings."""
    if not isinstance(d, dict):
        raise ValueError("protocol must be a mapping")
    kinds = {f.name: f.type for f in fields(ProtocolSettings)}
    d = dict(d)
    estimator = d.pop("estimator", "median")
    if estimator not in ESTIMATORS:
        raise ValueError(f"protocol.estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    for key, v in d.items():
        if key not in PROTOCOL_BOUNDS or key not in kinds:
            raise ValueError(f"unknown protocol setting {key!r}")
        lo, hi = PROTOCOL_BOUNDS[key]
        hi = max_time_s if hi is None else hi
        integral = kinds[key] in ("int", int)
        if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi
                or (integral and v != int(v))):
            raise ValueError(f"protocol.{key} must be {'an integer' if integral else 'a number'} in "
                             f"[{lo}, {hi}] on this agent, got {v!r}")
    return ProtocolSettings(estimator=estimator,
                            **{k: (int(v) if kinds[k] in ("int", int) else float(v)) for k, v in d.items()})


_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{},"')
_JSON_STRING = re.compile(rb'"[^"]*"')


def check_json_shape(body: bytes, max_depth: int = MAX_JSON_DEPTH, max_items: int = MAX_JSON_ITEMS) -> None:
    """Refuse (ValueError) a JSON body nested deeper than ``max_depth`` or with more than ``max_items`` arrays,
    objects and elements, before it is parsed: ``json.loads`` recurses once per level (a RecursionError past
    ~1000) and builds every value (``[[],[],...]`` makes a list per 3 bytes). Brackets inside strings are text.

    Costs a few passes in C over the body (a real request's bulk is its model, one base64 string) and a Python
    loop over at most ``2 * max_items`` structural characters. Meant for valid JSON; text that is not valid
    is refused here or by ``json.loads``."""
    # escaped backslashes and quotes cannot end a string: drop them, keep only structure and quotes, then drop
    # the strings (what is left of them: their quotes and the brackets and commas they held)
    skeleton = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURE)
    skeleton = _JSON_STRING.sub(b"", skeleton)
    depth = 0
    for c in skeleton[: 2 * max_items + 2]:  # valid JSON within the limits is no longer: it closes what it opens
        if c in b"[{":
            depth += 1
            if depth > max_depth:
                raise ValueError(f"JSON nested more than {max_depth} levels deep")
        elif c in b"]}":
            depth -= 1
    items = skeleton.count(b"[") + skeleton.count(b"{") + skeleton.count(b",")
    if items > max_items or len(skeleton) > 2 * max_items + 2:
        raise ValueError(f"JSON with more than {max_items} values (arrays, objects and their elements)")


MAX_COOLDOWN_S = 300.0  # a client may ask the agent to wait for the board to cool, but not for ever


def check_request(req, max_time_s: float = MAX_TIME_S) -> dict:
    """Validate a /measure request; returns the arguments for ``measure_local`` (less the model path)."""
    from ...runtimes import RUNTIMES
    from ..device_profile import validate_profile

    if not isinstance(req, dict):
        raise ValueError("the body must be a JSON object")
    fmt = req.get("format")
    if fmt not in ("onnx", "tflite"):
        raise ValueError(f"format must be onnx or tflite, got {fmt!r}")
    runtime = req.get("runtime") or ("onnxruntime" if fmt == "onnx" else "litert")
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    energy = req.get("energy") or {}
    if not isinstance(energy, dict):
        raise ValueError("energy must be a mapping")
    sent = [k for k in AGENT_SIDE_ENERGY if k in energy]
    if sent:
        raise ValueError(f"energy.{sent[0]} is set on the agent's side (hwnas agent serve --energy-{sent[0].replace('_', '-')}), "
                         f"never by a client")
    op_profile = req.get("op_profile", True)
    if not isinstance(op_profile, bool):
        raise ValueError("op_profile must be true or false")
    # threads, delegate, affinity and energy are checked exactly as a device profile's are
    p = validate_profile({"name": "request", "runtime": runtime, "threads": req.get("threads"),
                          "delegate": req.get("delegate"), "affinity": req.get("affinity"), "energy": energy,
                          "thermal": req.get("thermal") or {}}, where="request")
    if float(p.thermal.get("cooldown_timeout_s") or 0) > MAX_COOLDOWN_S:
        raise ValueError(f"thermal.cooldown_timeout_s must be at most {MAX_COOLDOWN_S:g} s on this agent")
    return {"runtime": runtime, "threads": p.threads, "delegate": p.delegate, "affinity": p.affinity,
            "energy": p.energy, "op_profile": op_profile, "thermal": p.thermal,
            "protocol": check_protocol(req.get("protocol") or {}, max_time_s)}


def _runtimes() -> dict:
    from ...runtimes import RUNTIMES, runtime_version

    out = {}
    for r in RUNTIMES:
        try:
            out[r] = runtime_version(r)
        except (ImportError, HwnasError):  # that runtime is not installed on this board
            out[r] = None
    return out


class _Handler(BaseHTTPRequestHandler):
    server_version = "hwnas-agent"

    # -- deadlines: every socket read times out, and the whole request must arrive in time ----------------
    def setup(self):
        self.timeout = self.server.read_timeout_s  # per-read socket timeout (StreamRequestHandler applies it)
        self._watchdog = None
        super().setup()
        self._arm(self.server.read_timeout_s)

    def _arm(self, seconds: float | None) -> None:
        """Cut the connection unless ``_arm(None)`` is called within ``seconds`` (slow or stalled clients)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if seconds is None:
            return
        conn = self.connection

        def cut():
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        self._watchdog = threading.Timer(seconds, cut)
        self._watchdog.daemon = True
        self._watchdog.start()

    def finish(self):
        self._arm(None)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, status: int, payload: dict, close: bool = False) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client went away
            self.close_connection = True

    def _refuse(self, status: int, payload: dict, token_ok: bool = True) -> None:
        """Answer before the body is read, then read the body the client declared and discard it (within
        ``_drain_s``): closing a socket with unread data resets the connection, and a client still sending would
        see a broken pipe or a reset instead of this answer."""
        self._send(status, payload, close=True)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return
        if length <= 0 or self.headers.get("Transfer-Encoding"):
            return
        srv = self.server
        try:
            self.connection.shutdown(socket.SHUT_WR)  # the answer is complete: the client may read it now
        except OSError:
            return
        self._arm(_drain_s(srv, length, token_ok))
        try:
            while length > 0 and (chunk := self.rfile.read1(min(length, 1 << 16))):
                length -= len(chunk)
        except OSError:  # timed out, cut off by the deadline, or the client went away
            pass
        self._arm(None)

    def _authorised(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = self.headers.get("X-Hwnas-Token") or ""
        if hmac.compare_digest(given.encode(), token.encode()):
            return True
        self._refuse(401, {"error": "bad or missing agent token (X-Hwnas-Token)"}, token_ok=False)
        return False

    def do_GET(self):  # noqa: N802
        self._arm(None)
        if not self._authorised():
            return
        if self.path.rstrip("/") == "/info":
            from ... import __version__

            self._send(200, {"hwnas": __version__, "fingerprint": host_fingerprint(), "runtimes": _runtimes()})
        else:
            self._send(404, {"error": f"no such endpoint {self.path}"})

    def _read_body(self) -> bytes | None:
        """The body, after checking its declared length against the limit; None when refused or cut off."""
        srv = self.server
        text = self.headers.get("Content-Length")
        if text is None or self.headers.get("Transfer-Encoding"):
            self._refuse(411, {"error": "a Content-Length header is required (no chunked bodies)"})
            return None
        try:
            length = int(text)
        except ValueError:
            length = -1
        if length <= 0:
            self._refuse(400, {"error": f"bad request: bad Content-Length {text!r}"})
            return None
        if length > srv.max_body_bytes:
            self._refuse(413, {"error": f"request body of {length} bytes is over this agent's limit of "
                                        f"{srv.max_body_bytes} bytes (a model up to {srv.max_model_bytes // 2**20} "
                                        f"MiB; start the agent with a larger --max-model-mb)"})
            return None
        self._arm(srv.read_timeout_s + length / MIN_UPLOAD_BPS)
        try:
            body = self.rfile.read(length)
        except OSError:
            body = b""
        self._arm(None)
        if len(body) != length:  # timed out or the client went away: nobody to answer
            self.close_connection = True
            return None
        return body

    def do_POST(self):  # noqa: N802
        if not self._authorised():
            return
        if self.path.rstrip("/") != "/measure":
            self._refuse(404, {"error": f"no such endpoint {self.path}"})
            return
        body = self._read_body()
        if body is None:
            return
        try:
            check_json_shape(body)  # before parsing: deep nesting would recurse, wide JSON would fill memory
            req = json.loads(body)
            del body
            args = check_request(req, self.server.max_time_s)
            model = base64.b64decode(req["model_b64"], validate=True)
            del req
            if len(model) > self.server.max_model_bytes:
                raise ValueError(f"model of {len(model)} bytes is over this agent's limit")
        except RecursionError:  # not reached past check_json_shape; kept so such a body is answered all the same
            self._send(400, {"error": "bad request: JSON nested too deeply"})
            return
        except (ValueError, KeyError, TypeError, AttributeError, HwnasError) as exc:
            self._send(400, {"error": f"bad request: {type(exc).__name__}: {exc}"})
            return
        except Exception as exc:  # a request that trips a check is still answered, and the agent keeps serving
            self._send(500, {"error": f"checking the request failed: {type(exc).__name__}: {exc}"})
            return
        from .local import measure_local

        energy = {**args.pop("energy"), **self.server.energy}
        proto = args["protocol"]
        timeout_s = proto.warmup_max_s + proto.max_time_s + 120.0  # + loading the model
        with self.server.lock:
            with tempfile.TemporaryDirectory(prefix="hwnas-agent-") as tmp:
                path = Path(tmp) / ("model.onnx" if args["runtime"] == "onnxruntime" else "model.tflite")
                path.write_bytes(model)
                del model
                try:
                    result = measure_local(path, energy=energy, sysfs_root=self.server.sysfs_root,
                                           timeout_s=timeout_s, **args)
                except ThermalStop as exc:  # the board is too hot to measure now: 409, the client treats it as off
                    self._send(409, {"error": str(exc)})
                    return
                except HwnasError as exc:
                    self._send(422, {"error": str(exc)})
                    return
                except Exception as exc:  # keep serving; report the failure to the client
                    self._send(500, {"error": f"{type(exc).__name__}: {exc}"})
                    return
        self._send(200, result.to_dict())


def _header(head: bytes, name: bytes) -> bytes | None:
    """Header ``name`` (lower case) in a raw request head, or None."""
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _drain_s(server, length: int, token_ok: bool) -> float:
    """How long a refused request's body may take to be read and discarded: what the body itself would have
    been allowed (the read timeout + its size, up to the limit, at 256 KiB/s); the read timeout alone for a
    client without the token, which should hold a worker no longer than its headers could."""
    if not token_ok:
        return server.read_timeout_s
    return server.read_timeout_s + min(max(length, 0), server.max_body_bytes) / MIN_UPLOAD_BPS


class _BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``workers`` at once. The rest are answered 503 at once, each by a thread
    of its own (at most ``BUSY_ANSWERS``) that then reads and discards the request before closing, so the answer
    arrives even while the client is still sending; past that, answered and closed from the accepting thread."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def process_request(self, request, client_address):
        if self.slots.acquire(blocking=False):
            try:
                super().process_request(request, client_address)
            except Exception:  # the slot goes back whatever failed; re-raised
                self.slots.release()
                raise
            return
        self.busy_answers += 1
        if self.busy_slots.acquire(blocking=False):
            try:
                threading.Thread(target=self._answer_busy, args=(request,), daemon=True).start()
                return
            except RuntimeError:  # no thread to be had: answer from here
                self.busy_slots.release()
        self._busy_at_once(request)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def _busy_response(self) -> bytes:
        body = json.dumps({"error": f"agent busy: {self.workers} requests in progress; retry later"}).encode()
        return (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    def _answer_busy(self, request) -> None:
        """503 first, then read the request's headers (within the read timeout) and the body they declare,
        discarding them (within ``_drain_s``); then close."""
        try:
            deadline = time.monotonic() + self.read_timeout_s

            def recv(buf) -> int:
                left = deadline - time.monotonic()
                if left <= 0:
                    return 0
                request.settimeout(left)
                return request.recv_into(buf)

            request.settimeout(self.read_timeout_s)
            request.sendall(self._busy_response())
            request.shutdown(socket.SHUT_WR)  # the answer is complete: the client may read it now
            buf = bytearray(1 << 16)
            head = b""
            while b"\r\n\r\n" not in head:
                n = recv(buf)
                if not n or len(head) > 1 << 16:
                    return
                head += bytes(buf[:n])
            head, _, rest = head.partition(b"\r\n\r\n")
            try:
                length = int(_header(head, b"content-length") or 0)
            except ValueError:
                return
            given = _header(head, b"x-hwnas-token") or b""
            token_ok = self.token is None or hmac.compare_digest(given, self.token.encode())
            deadline = time.monotonic() + _drain_s(self, length, token_ok)
            length -= len(rest)
            while length > 0:
                n = recv(memoryview(buf)[: min(length, len(buf))])
                if not n:
                    return
                length -= n
        except OSError:  # timed out or the client went away
            pass
        finally:
            self.shutdown_request(request)
            self.busy_slots.release()

    def _busy_at_once(self, request) -> None:
        """Every busy-answer thread taken: answer with what already arrived read, and close. A client still
        sending may see a reset instead (``AgentRunner`` retries either)."""
        try:
            request.setblocking(False)
            try:  # take what already arrived, so closing does not reset the connection before the answer
                request.recv(1 << 16)
            except OSError:
                pass
            request.settimeout(1.0)
            request.sendall(self._busy_response())
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.shutdown_request(request)


class AgentServer:
    """``AgentServer(host, port).serve_forever()``; ``start()`` serves from a thread (tests, notebooks).

    Loopback only unless a token is given (``token`` or ``$HWNAS_AGENT_TOKEN``); ``energy_supply`` /
    ``sysfs_root`` configure the energy sensor on this side (clients cannot)."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = 8765, token: str | None = None,
                 sysfs_root: Path | None = None, verbose: bool = False, *, energy_supply: str | None = None,
                 max_model_bytes: int = MAX_MODEL_BYTES, read_timeout_s: float = READ_TIMEOUT_S,
                 workers: int = WORKERS, max_time_s: float = MAX_TIME_S):
        self.host, self.port = host, port
        self.token = resolve_token(token)
        if self.token is None and not is_loopback(host):
            raise ParametersError(f"refusing to listen on {host or 'all addresses'} without a token: anyone who "
                                  f"can reach it could run models here. Set ${TOKEN_ENV} or pass a `token` "
                                  "(or listen on 127.0.0.1)")
        if workers < 1 or max_model_bytes < 1 or read_timeout_s <= 0 or max_time_s <= 0:
            raise HwnasError("agent limits must be positive (workers, max model size, read timeout, max time)")
        self.sysfs_root = sysfs_root
        self.energy = {"supply": energy_supply} if energy_supply else {}
        self.verbose = verbose
        self.max_model_bytes, self.read_timeout_s = int(max_model_bytes), float(read_timeout_s)
        self.workers, self.max_time_s = int(workers), float(max_time_s)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _make(self) -> ThreadingHTTPServer:
        try:
            httpd = _BoundedHTTPServer((self.host, self.port), _Handler)
        except OSError as exc:
            raise HwnasError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        httpd.token, httpd.sysfs_root, httpd.verbose, httpd.energy = self.token, self.sysfs_root, self.verbose, self.energy
        httpd.max_model_bytes = self.max_model_bytes
        httpd.max_body_bytes = self.max_model_bytes * 4 // 3 + 64 * 1024  # base64 + the JSON around it
        httpd.read_timeout_s, httpd.max_time_s = self.read_timeout_s, self.max_time_s
        httpd.workers, httpd.slots = self.workers, threading.BoundedSemaphore(self.workers)
        httpd.busy_slots, httpd.busy_answers = threading.BoundedSemaphore(BUSY_ANSWERS), 0
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
    def busy_answers(self) -> int:
        """Connections answered 503 (every worker busy) since the server was made."""
        return self._httpd.busy_answers if self._httpd is not None else 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class AgentBusy(DeviceUnreachable):
    """The agent answered 503 (every worker busy) until the client's timeout: it is there, but had no turn."""


_BACKOFF = random.Random()  # its own generator: retries never touch the global one (seeded searches use it)


class AgentRunner:
    """Sends a model to a board's agent and gets its measurement back (connection type ``agent``)."""

    def __init__(self, token: str | None = None):
        self.token = token

    @staticmethod
    def _base(profile) -> str:
        c = profile.connection
        return f"http://{c['host']}:{int(c.get('port') or 8765)}"

    # the agent is busy (503) or the connection was cut: worth another try, after a pause
    TRANSIENT = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.IncompleteRead)

    def _request(self, url: str, data: bytes | None, timeout: float, profile) -> dict:
        """One request, retried on 503 (every agent worker busy), a reset connection or a broken pipe with
        exponential back-off (a random pause in [d/2, d], d from RETRY_FIRST_S doubling up to RETRY_MAX_S) until
        ``timeout`` seconds have passed; any other failure (refused, unreachable, timed out, an error answer)
        is raised at once."""
        headers = {"Content-Type": "application/json"}
        token = self.token or os.environ.get(TOKEN_ENV)
        if token:
            headers["X-Hwnas-Token"] = token
        req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
        deadline = time.monotonic() + timeout
        delay, attempts = RETRY_FIRST_S, 0
        while True:
            attempts += 1
            try:
                with urllib.request.urlopen(req, timeout=max(deadline - time.monotonic(), 0.1)) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as exc:
                if exc.code != 503:
                    self._refused(exc, url, profile)
                why, busy = "every agent worker busy (503)", True
            except (urllib.error.URLError, OSError, http.client.IncompleteRead) as exc:
                reason = getattr(exc, "reason", exc)
                if not isinstance(reason, self.TRANSIENT):
                    raise DeviceUnreachable(f"device {profile.name}: agent at {url} is not reachable ({reason}); "
                                            f"start it on the board with `hwnas agent serve --host 0.0.0.0 --port "
                                            f"{profile.connection.get('port', 8765)}` and a token "
                                            f"(docs/security.md)") from None
                why, busy = f"connection cut: {type(reason).__name__}: {reason}", False
            pause = _BACKOFF.uniform(delay / 2, delay)
            if time.monotonic() + pause >= deadline:
                raise (AgentBusy if busy else DeviceUnreachable)(
                    f"device {profile.name}: agent at {url}: {why}; gave up after {timeout:g} s ({attempts} "
                    f"attempts; the device profile's connection.timeout_s)") from None
            time.sleep(pause)
            delay = min(2 * delay, RETRY_MAX_S)

    @staticmethod
    def _refused(exc: urllib.error.HTTPError, url: str, profile):
        try:
            msg = json.loads(exc.read()).get("error") or exc.reason
        except (OSError, http.client.HTTPException, ValueError, AttributeError):  # no JSON {"error": ...} body
            msg = exc.reason
        if exc.code == 401:
            raise DeviceUnreachable(f"device {profile.name}: agent at {url} refused: {msg}") from None
        if exc.code == 409:  # thermal stop on the board: the device is there but too hot (retried like a drop-off)
            raise ThermalStop(f"device {profile.name} (agent at {url}): {msg}") from None
        raise HwnasError(f"device {profile.name}: agent at {url}: {msg}") from None

    def info(self, profile, timeout: float = 3.0) -> dict:
        return self._request(self._base(profile) + "/info", None, timeout, profile)

    def reachable(self, profile) -> tuple[bool, str]:
        try:
            info = self.info(profile, timeout=2.0)
        except AgentBusy:  # it answered: measurements wait their turn (AgentRunner.run retries until its timeout)
            return True, f"agent {self._base(profile)} (busy: every worker in use; measurements will wait their turn)"
        except DeviceUnreachable as exc:
            reason = str(exc).split("(", 1)[-1].split(")")[0] if "(" in str(exc) else str(exc)
            return False, f"no answer from the agent at {self._base(profile)} ({reason})"
        except HwnasError as exc:
            return False, str(exc)
        fp = info.get("fingerprint", {})
        return True, f"agent {self._base(profile)} ({fp.get('host')}, {fp.get('cpu')})"

    def run(self, path: Path, profile, protocol: ProtocolSettings | None = None, op_profile: bool = True,
            reference: Path | None = None) -> RunResult:
        """Measure ``path`` on the agent's board. A drift ``reference`` is refused: the agent times one model per
        request, so it cannot interleave a reference's rounds with the candidate's."""
        if reference is not None:
            raise HwnasError(f"device {profile.name}: a drift reference is not supported over the agent "
                             "(use reference: none)")
        protocol = protocol or ProtocolSettings()
        path = Path(path)
        body = json.dumps({
            "model_b64": base64.b64encode(path.read_bytes()).decode(), "format": profile.format,
            "runtime": profile.runtime, "threads": profile.threads, "delegate": profile.delegate,
            "affinity": profile.affinity, "protocol": {k: v for k, v in protocol.to_dict().items() if v is not None},
            "energy": {k: v for k, v in (profile.energy or {}).items() if k not in AGENT_SIDE_ENERGY},
            "op_profile": op_profile, "thermal": profile.thermal,
        }).encode()
        timeout = float(profile.connection.get("timeout_s") or 600)
        d = self._request(self._base(profile) + "/measure", body, timeout, profile)
        r = RunResult.from_dict(d)
        r.fingerprint = {**r.fingerprint, "via": f"agent {self._base(profile)}"}
        return r
