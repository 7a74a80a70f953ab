import pytest

from hwnas.measure.device_profile import DeviceProfile, ProfileError, list_profiles, load_profile
from hwnas.errors import HwnasError

SHIPPED = {"host", "pixel", "pixel-onnxruntime", "raspberry-pi-4", "raspberry-pi-5", "jetson-nano"}


def test_shipped_profiles_validate():
    profiles = {p.name: p for p in list_profiles()}
    assert SHIPPED <= set(profiles)
    assert profiles["host"].connection_type == "local"
    pixel = profiles["pixel"]
    assert (pixel.runtime, pixel.threads, pixel.delegate, pixel.connection_type) == ("litert", 4, "xnnpack", "adb")
    assert pixel.energy["sensor"] == "battery" and pixel.affinity == [4, 5, 6, 7]
    for name in ("raspberry-pi-4", "raspberry-pi-5", "jetson-nano"):
        assert profiles[name].connection_type == "agent" and profiles[name].connection["port"] == 8765
    assert profiles["jetson-nano"].energy["sensor"] == "ina3221"
    for p in profiles.values():
        assert p.energy["power_model"]["name"]


def test_unknown_device_lists_known():
    with pytest.raises(HwnasError, match="unknown device 'nope'.*host"):
        load_profile("nope")


def _write(tmp_path, text, name="dev.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, message",
    [
        ("runtime: onnxruntime\nthreads: four\n", "key 'threads': expected an integer in 1..256, got 'four'"),
        ("runtime: tensorflow\n", "key 'runtime': expected one of onnxruntime, litert, got 'tensorflow'"),
        ("threads: 2\n", "key 'runtime' is missing"),
        ("runtime: litert\nthreds: 2\n", "key 'threds': expected one of the known keys"),
        ("runtime: litert\nconnection: {type: ssh}\n", "key 'connection.type': expected one of local, adb, agent"),
        ("runtime: litert\nconnection: {type: agent}\n", "key 'connection.host' is missing"),
        ("runtime: litert\nconnection: {type: agent, host: h, port: 99999}\n", "key 'connection.port'"),
        ("runtime: litert\naffinity: [0, -1]\n", "key 'affinity': expected a non-empty list"),
        ("runtime: litert\nenergy: {sensor: magic}\n", "key 'energy.sensor'"),
        ("runtime: litert\nenergy: {power_model: {name: x, idle_w: 5, active_w: 2}}\n",
         "key 'energy.power_model.active_w': expected a number >= idle_w"),
        ("runtime: litert\nprecision: fp8\n", "key 'precision'"),
        ("- just\n- a list\n", "expected a mapping"),
        ("runtime: [unclosed\n", "not valid YAML (line"),
    ],
)
def test_bad_yaml_names_file_key_and_expectation(tmp_path, text, message):
    p = _write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(p)
    assert message in str(info.value)
    assert "dev.yaml" in str(info.value)


def test_user_profiles_in_hwnas_home_by_name(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "device_profiles").mkdir(parents=True)
    (home / "device_profiles" / "mybox.yaml").write_text("runtime: litert\nthreads: 2\n")
    monkeypatch.setenv("HWNAS_HOME", str(home))
    p = load_profile("mybox")
    assert isinstance(p, DeviceProfile) and p.name == "mybox" and p.threads == 2 and p.format == "tflite"
    assert "mybox" in {q.name for q in list_profiles()}


def test_with_runtime_switches_and_drops_delegate():
    p = load_profile("pixel").with_runtime("onnxruntime")
    assert p.runtime == "onnxruntime" and p.delegate is None and p.format == "onnx"
    with pytest.raises(HwnasError, match="unknown runtime"):
        load_profile("host").with_runtime("tvm")


def test_dppnet_paper_device_classes_are_shipped():
    """DPP-Net's three devices: a Titan X workstation (agent + NVML), a Jetson TX1 (agent + INA3221) and a
    Cortex-A53 phone (adb + battery), each sampling its sensor at its own rate."""
    want = {"titan-x-workstation": ("agent", "nvml", "onnxruntime"), "jetson-tx1": ("agent", "ina3221", "onnxruntime"),
            "cortex-a53-phone": ("adb", "battery", "litert")}
    for name, (conn, sensor, runtime) in want.items():
        p = load_profile(name)
        assert (p.connection_type, p.energy["sensor"], p.runtime) == (conn, sensor, runtime)
        assert p.energy["sample_interval_s"] > 0 and p.energy["power_model"]["name"]


def test_sample_interval_must_be_positive(tmp_path):
    with pytest.raises(ProfileError, match="sample_interval_s"):
        load_profile(str(_write(tmp_path, "runtime: onnxruntime\nenergy: {sensor: none, sample_interval_s: 0}\n")))
