"""Issue 18 item 3: the agent is safe on a network by default. Every check runs against a real server on
loopback (raw sockets where a well-behaved client could not misbehave enough)."""

import base64
import json
import socket
import time
import urllib.error
import urllib.request

import pytest

from hwnas.cli.main import main
from hwnas.errors import HwnasError
from hwnas.measure.device_profile import load_profile
from hwnas.measure.runners.agent import AgentRunner, AgentServer

BODY = {"model_b64": base64.b64encode(b"not really a model").decode(), "format": "onnx"}


def _post(server, payload, token=None, timeout=10):
    headers = {"X-Hwnas-Token": token} if token else {}
    req = urllib.request.Request(server.url + "/measure", data=json.dumps(payload).encode(), headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _raw(server, data: bytes, timeout=10.0) -> bytes:
    """Send ``data`` and return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_defaults_are_loopback_and_a_token_is_required_anywhere_else(monkeypatch):
    monkeypatch.delenv("HWNAS_AGENT_TOKEN", raising=False)
    assert AgentServer().host == "127.0.0.1"
    for host in ("0.0.0.0", "::", "", "192.0.2.1", "board.local"):
        with pytest.raises(HwnasError, match="without a token"):
            AgentServer(host, 0)
    AgentServer("localhost", 0)
    AgentServer("0.0.0.0", 0, token="s3cret-token")  # told otherwise, with a token: fine
    with pytest.raises(HwnasError, match="empty"):
        AgentServer("127.0.0.1", 0, token="")
    monkeypatch.setenv("HWNAS_AGENT_TOKEN", "  ")
    with pytest.raises(HwnasError, match="set but empty"):
        AgentServer("127.0.0.1", 0)


def test_cli_takes_the_token_from_env_or_file_never_argv(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HWNAS_AGENT_TOKEN", raising=False)
    for argv in (["--token", ""], ["--token", "s3cret"], ["--host", "0.0.0.0", "--port", "0"],
                 ["--token-file", str(tmp_path / "missing")]):
        assert main(["agent", "serve", *argv]) == 2
    err = capsys.readouterr().err
    assert "shows in ps;" in err and "without a token" in err and "cannot read agent token file" in err
    (tmp_path / "empty").write_text("\n")
    assert main(["agent", "serve", "--token-file", str(tmp_path / "empty")]) == 2
    assert "is empty" in capsys.readouterr().err


def test_info_and_measure_need_the_token_when_one_is_set():
    with AgentServer("127.0.0.1", 0, token="s3cret") as server:
        for headers in ({}, {"X-Hwnas-Token": "wrong"}):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(urllib.request.Request(server.url + "/info", headers=headers), timeout=5)
            assert info.value.code == 401
        assert _post(server, BODY)[0] == 401
        req = urllib.request.Request(server.url + "/info", headers={"X-Hwnas-Token": "s3cret"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200


def test_an_oversized_body_is_refused_before_it_is_read():
    with AgentServer("127.0.0.1", 0, max_model_bytes=1024, read_timeout_s=30) as server:
        t0 = time.monotonic()
        # declares 1 GB and sends none of it: reading first would wait for the 30 s deadline
        out = _raw(server, b"POST /measure HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        assert out.startswith(b"HTTP/1.0 413") and b"over this agent's limit" in out
        assert time.monotonic() - t0 < 5
        out = _raw(server, b"POST /measure HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.startswith(b"HTTP/1.0 411")


@pytest.mark.parametrize("protocol, key", [
    ({"max_time_s": 1e9}, "max_time_s"), ({"warmup_max_s": 1e6}, "warmup_max_s"),
    ({"max_rounds": 10**9}, "max_rounds"), ({"max_time_s": float("nan")}, "max_time_s"),
    ({"min_runs": 7.5}, "min_runs"), ({"rel_ci": True}, "rel_ci"), ({"sleep": 1}, "sleep"),
])
def test_unbounded_protocol_settings_are_refused(protocol, key):
    with AgentServer("127.0.0.1", 0) as server:
        status, body = _post(server, {**BODY, "protocol": protocol})
    assert status == 400 and key in body["error"]


def test_bounded_request_fields():
    from hwnas.measure.runners.agent import check_request

    for bad, key in (({"threads": 10**6}, "threads"), ({"affinity": "0-3"}, "affinity"),
                     ({"runtime": "tensorflow"}, "runtime"), ({"op_profile": "yes"}, "op_profile"),
                     ({"energy": {"sensor": "rapl", "power_model": {"name": "x", "idle_w": -1, "active_w": 1}}},
                      "idle_w")):
        with pytest.raises((ValueError, HwnasError), match=key):
            check_request({**BODY, **bad})
    args = check_request({**BODY, "threads": 2, "protocol": {"max_time_s": 5}})
    assert args["threads"] == 2 and args["protocol"].max_time_s == 5.0


@pytest.mark.parametrize("energy", [{"sensor": "battery", "supply": "../../../../tmp/x"},
                                    {"sensor": "rapl", "sysfs_root": "/home/someone"}])
def test_client_supplied_energy_paths_are_refused(energy):
    with AgentServer("127.0.0.1", 0) as server:
        status, body = _post(server, {**BODY, "energy": energy})
    assert status == 400 and "agent's side" in body["error"]


def test_the_client_never_sends_agent_side_energy_settings(tmp_path, monkeypatch):
    sent = {}

    def fake_request(self, url, data, timeout, profile):
        sent.update(json.loads(data))
        raise HwnasError("stop here")

    monkeypatch.setattr(AgentRunner, "_request", fake_request)
    p = load_profile("raspberry-pi-4")
    from dataclasses import replace

    p = replace(p, energy={**p.energy, "sensor": "battery", "supply": "BAT0", "sysfs_root": "/x"})
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    with pytest.raises(HwnasError, match="stop here"):
        AgentRunner().run(model, p)
    assert sent["energy"]["sensor"] == "battery" and "supply" not in sent["energy"]
    assert "sysfs_root" not in sent["energy"]


def test_stalled_and_dripping_clients_are_cut_off():
    with AgentServer("127.0.0.1", 0, read_timeout_s=0.5) as server:
        t0 = time.monotonic()
        assert _raw(server, b"GET /info HTTP/1.1\r\nHost: x\r\n") == b""  # headers never finish
        assert time.monotonic() - t0 < 3
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:  # one byte every 0.2 s
            t0 = time.monotonic()
            closed = False
            for ch in b"GET /info HTTP/1.1\r\nX-Slow: " + b"a" * 100:
                try:
                    s.sendall(bytes([ch]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.2)
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        closed = True
                        break
                except BlockingIOError:
                    pass
                finally:
                    s.setblocking(True)
            assert closed and time.monotonic() - t0 < 3  # each byte came in time; the whole request did not
        t0 = time.monotonic()  # a body that stops half-way
        out = _raw(server, b"POST /measure HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"model")
        assert out == b"" and time.monotonic() - t0 < 3
        with urllib.request.urlopen(server.url + "/info", timeout=5) as resp:  # still serving
            assert resp.status == 200


def test_concurrency_is_bounded_the_rest_get_503():
    with AgentServer("127.0.0.1", 0, workers=2, read_timeout_s=5) as server:
        stalled = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
        for s in stalled:
            s.sendall(b"GET /info HTTP/1.1\r\n")
        time.sleep(0.3)
        try:
            out = _raw(server, b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
            assert out.startswith(b"HTTP/1.0 503") and b"agent busy" in out
        finally:
            for s in stalled:
                s.close()
        time.sleep(0.3)
        with urllib.request.urlopen(server.url + "/info", timeout=5) as resp:
            assert resp.status == 200


def test_protocol_estimator_is_checked_by_name():
    from hwnas.measure.runners.agent import check_protocol

    assert check_protocol({"estimator": "p10", "max_time_s": 1.0}).estimator == "p10"
    with pytest.raises(ValueError, match="protocol.estimator must be one of"):
        check_protocol({"estimator": "__import__"})
