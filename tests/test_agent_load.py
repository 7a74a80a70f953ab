"""Issue 23 item 9: hostile JSON. Every check runs against a real server on
loopback; raw sockets where a well-behaved client could not misbehave enough (or could not reset a connection).

Timing: the machine running these may be loaded (2 shared cores), so no check depends on how fast anything is;
deadlines are generous and a defect shows as a wrong answer or an error, not as slowness."""

import json
import socket
import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from hwnas.measure.device_profile import load_profile
from hwnas.measure.runners.agent import MAX_JSON_DEPTH, MAX_JSON_ITEMS, AgentServer

TOKEN = "s3cret-token"


def _profile(port: int, timeout_s: float = 600):
    p = load_profile("raspberry-pi-4").with_runtime("onnxruntime")
    return replace(p, threads=1, connection={"type": "agent", "host": "127.0.0.1", "port": port,
                                             "timeout_s": timeout_s})


def _post_raw(port: int, body: bytes, token: str | None = TOKEN, timeout: float = 60.0) -> bytes:
    """POST ``body`` to /measure over a raw socket; everything the server answers until it closes."""
    head = (f"POST /measure HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n" + (f"X-Hwnas-Token: {token}\r\n" if token else "") + "\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head + body)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def _info_ok(server, token: str | None = TOKEN) -> bool:
    req = urllib.request.Request(server.url + "/info", headers={"X-Hwnas-Token": token} if token else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status == 200


# -- item 9: JSON nested deeply (or wide) is refused with 400 before it is parsed ---------------------------------

def _nested_in_a_request(depth: int) -> bytes:
    inner = "{\"a\": " * depth + "1" + "}" * depth
    return ('{"format": "onnx", "model_b64": "AAAA", "thermal": ' + inner + "}").encode()


@pytest.mark.parametrize("body, why", [
    (b"[" * 100_000 + b"]" * 100_000, "nested"),  # the report: 200 KB, no answer and a RecursionError before
    (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "nested"),
    (_nested_in_a_request(MAX_JSON_DEPTH + 1), "nested"),  # parses without a RecursionError; still refused
    (b"[" + b"[]," * MAX_JSON_ITEMS + b"[]]", "values"),  # small, but a list object per 3 bytes once parsed
])
def test_deep_or_wide_json_is_refused_with_400_and_the_agent_keeps_serving(body, why):
    with AgentServer("127.0.0.1", 0, token=TOKEN) as server:
        out = _post_raw(server.port, body)
        assert out.startswith(b"HTTP/1.0 400"), out[:200]
        error = json.loads(out.split(b"\r\n\r\n", 1)[1])["error"]
        assert why in error and "bad request" in error
        assert _info_ok(server)


def test_json_within_the_bounds_is_parsed_and_checked_as_before():
    with AgentServer("127.0.0.1", 0, token=TOKEN) as server:
        # nested to the limit (the request itself is one level): parsed, then refused by the field check
        out = _post_raw(server.port, _nested_in_a_request(MAX_JSON_DEPTH - 2))
        assert out.startswith(b"HTTP/1.0 400") and b"thermal" in out and b"nested" not in out
        # brackets, braces, commas and escaped quotes inside strings are text, not structure
        text = '[{\\"' * 50_000
        out = _post_raw(server.port, json.dumps({"format": "pb", "model_b64": text}).encode())
        assert out.startswith(b"HTTP/1.0 400") and b"format must be onnx or tflite" in out
