"""A fake `adb` for tests: there is no phone here, so this replays real-format benchmark_model and
onnxruntime_perf_test output (tests/data/*.txt).

Tests put a wrapper named `adb` on PATH that runs this file. State lives under $FAKE_ADB_ROOT (the
phone's filesystem: pushed files land at $FAKE_ADB_ROOT/<remote path>); every invocation is appended to
$FAKE_ADB_ROOT/calls.log. Knobs: FAKE_ADB_DEVICES (serials, comma separated; '' = none attached),
FAKE_ADB_LATENCY_US (median latency, default 2139), FAKE_ADB_NO_BENCHMARK=1 (binaries missing),
FAKE_ADB_BATTERY=0 (battery files unreadable), FAKE_ADB_TEMPS / FAKE_ADB_CPU_CAPPED (thermal readings),
FAKE_ADB_PLAN_US (planted medians in us, comma separated: the nth run of the benchmark tool reports the nth,
the last repeats, no jitter), FAKE_ADB_OP_PROFILES (a folder: <model file name>.txt replaces the rows of the op profile's Run Order table
and <model file name>.us the median latency in us, for that model; .us for onnxruntime_perf_test too).
Several phones (a lab): with FAKE_ADB_PER_SERIAL=1 each serial has its own filesystem under $FAKE_ADB_ROOT/<serial>/
and reads FAKE_ADB_LATENCY_US_<serial> (its planted median, us), FAKE_ADB_OP_PROFILES_<serial> (its own folder) and FAKE_ADB_DELAY_S_<serial> (seconds each run of
its benchmark tool takes; FAKE_ADB_DELAY_S for every phone); a file $FAKE_ADB_ROOT/offline/<serial> takes that phone
off the bus (`adb devices` no longer lists it, `adb -s` answers "device not found") until it is removed.
"""

import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(os.environ["FAKE_ADB_ROOT"])
BUS = ROOT  # calls.log and the offline/ folder stay here; ROOT becomes the phone's own folder with FAKE_ADB_PER_SERIAL
SERIAL = ""


def knob(name: str, default: str | None = None) -> str | None:
    """An environment knob, the serial's own (NAME_<serial>, each character of the serial but letters and digits as _) first."""
    own = f"{name}_{re.sub(r'[^A-Za-z0-9]', '_', SERIAL)}"  # a shell keeps only names like these
    return os.environ.get(own, os.environ.get(name, default)) if SERIAL else os.environ.get(name, default)
TEMPLATE = Path(__file__).resolve().parent.parent / "data" / "benchmark_model_xnnpack.txt"
BM = "/data/local/tmp/benchmark_model"
PT = "/data/local/tmp/onnxruntime_perf_test"
PT_TEMPLATE = TEMPLATE.parent / "onnxruntime_perf_test.txt"


def phone(path: str) -> Path:
    return ROOT / path.lstrip("/")


def counter() -> int:
    f = ROOT / "counter"
    n = int(f.read_text()) if f.exists() else 0
    f.write_text(str(n + 1))
    return n


def planted(n: int, med: float, jitter: float) -> float:
    """The median of the nth tool run: FAKE_ADB_PLAN_US when set, else ``med`` times the jitter."""
    plan = [float(v) for v in os.environ.get("FAKE_ADB_PLAN_US", "").split(",") if v]
    return plan[min(n, len(plan) - 1)] if plan else med * jitter


def benchmark(args: list[str]) -> int:
    opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
    graph = opts.get("graph", "")
    if not phone(graph).is_file():
        print(f"ERROR: Could not open '{graph}'.", file=sys.stderr)
        print("ERROR: Failed to load model", file=sys.stderr)
        return 1
    n = counter()
    med = float(knob("FAKE_ADB_LATENCY_US", "2139"))
    time.sleep(float(knob("FAKE_ADB_DELAY_S", "0")))
    own = Path(knob("FAKE_ADB_OP_PROFILES", "/nonexistent")) / Path(graph).name
    if own.with_name(own.name + ".us").is_file():
        med = float(own.with_name(own.name + ".us").read_text())
    med = planted(n, med, 1.0 + 0.002 * ((n * 7919) % 5 - 2))  # deterministic +-0.4 %
    num_runs = int(opts.get("num_runs", "50"))
    min_secs = float(opts.get("min_secs", "1"))
    if num_runs > 100000:  # a sustained run for energy: last min_secs, like the real tool
        time.sleep(min(min_secs, 5.0))
        num_runs = max(1, int(min_secs * 1e6 / med))
    values = {"NUM_RUNS": num_runs, "WARMUP_RUNS": opts.get("warmup_runs", "1"), "GRAPH": graph,
              "OP_PROFILING": "1" if opts.get("enable_op_profiling") == "true" else "0",
              "MIN_SECS": opts.get("min_secs", "1"), "MAX_SECS": opts.get("max_secs", "150"),
              "FIRST": int(med * 1.03), "CURR": int(med * 1.001), "MIN": int(med * 0.975), "MAX": int(med * 1.12),
              "AVG": f"{med * 1.007:g}", "STD": int(med * 0.018), "P5": int(med * 0.978), "MEDIAN": int(med),
              "P95": int(med * 1.041)}
    text = TEMPLATE.read_text()
    if values["OP_PROFILING"] == "0":
        text = text.split("INFO: Operator-wise Profiling Info")[0]
    elif own.with_name(own.name + ".txt").is_file():  # this model's own Run Order rows
        head, rest = text.split("[Name]\n", 1)
        text = head + "[Name]\n" + own.with_name(own.name + ".txt").read_text() + "INFO: \n" + rest.split("INFO: \n", 1)[1]
    print(re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), text), end="")
    return 0


def perf_test(args: list[str]) -> int:
    """onnxruntime_perf_test -I -s -e EP -x N -y 1 -m times -r N [-i opts] model: its real output format."""
    opts, i = {}, 0
    while i < len(args) - 1:
        if args[i] in ("-e", "-x", "-y", "-m", "-r", "-t", "-i"):
            opts[args[i]] = args[i + 1]
            i += 2
        else:
            i += 1
    model = args[-1]
    if not phone(model).is_file():
        print(f"{model}: No such file or directory", file=sys.stderr)
        return 1
    if opts.get("-e", "cpu") not in ("cpu", "xnnpack", "nnapi", "qnn"):
        print("This backend is not included in perf test runner.", file=sys.stderr)
        return 1
    n = counter()
    time.sleep(float(knob("FAKE_ADB_DELAY_S", "0")))
    own = Path(knob("FAKE_ADB_OP_PROFILES", "/nonexistent")) / (Path(model).name + ".us")
    med = float(own.read_text()) if own.is_file() else float(knob("FAKE_ADB_LATENCY_US", "2139"))
    med = planted(n, med, 1.0 + 0.002 * ((n * 7919) % 5 - 2)) / 1e6
    runs = int(opts.get("-r", "1000")) if opts.get("-m") == "times" else max(1, int(float(opts.get("-t", "1")) / med))
    if opts.get("-m") == "duration":
        time.sleep(min(float(opts.get("-t", "1")), 5.0))
    values = {"THREADS": opts.get("-x", "0"), "FIRST": int(med * 1.6e3), "TOTAL": f"{med * 1.01 * runs:g}",
              "NUM_RUNS": runs, "AVG": f"{med * 1.01e3:g}", "RUNTIME": f"{med * 1.02 * runs:g}",
              "IPS": f"{1 / (med * 1.02):g}", "MIN": f"{med * 0.97:g}", "MAX": f"{med * 1.3:g}", "P50": f"{med:g}",
              "P90": f"{med * 1.04:g}", "P95": f"{med * 1.06:g}", "P99": f"{med * 1.15:g}", "P999": f"{med * 1.3:g}"}
    print(re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), PT_TEMPLATE.read_text()), end="")
    return 0


def temperatures() -> int:
    """The thermal one-liner: zones from FAKE_ADB_TEMPS (or the serial's own FAKE_ADB_TEMPS_<serial>; hottest zone
    per successive reading, degrees C, the last
    one repeats; default 38.5), battery at 31.0 C, CPU 4 capped when FAKE_ADB_CPU_CAPPED=1."""
    seq = [float(t) for t in knob("FAKE_ADB_TEMPS", "38.5").split(",")]
    f = ROOT / "thermal_reads"
    n = int(f.read_text()) if f.exists() else 0
    f.write_text(str(n + 1))
    t = seq[min(n, len(seq) - 1)]
    print(f"zone cpu-big-therm {int(t * 1000)}\nzone cpu-little-therm {int((t - 6) * 1000)}\nbattery battery 310")
    for cpu in range(8):
        cap = 1704000 if cpu == 4 and os.environ.get("FAKE_ADB_CPU_CAPPED") == "1" else 2850000
        print(f"cpufreq cpu{cpu} {cap}/2850000")
    return 0


PROPS = {"ro.product.model": "Pixel 7", "ro.product.manufacturer": "Google", "ro.soc.model": "GS201",
         "ro.build.fingerprint": "google/panther/panther:14/UQ1A.240105.004/11206848:user/release-keys",
         "ro.build.version.release": "14"}
SHA1 = "3f786850e387550fdab836ed7e6dc881de23001b"


def tool_missing(path: str) -> bool:
    """FAKE_ADB_NO_BENCHMARK=1: the phone has neither benchmark tool."""
    return path in (BM, PT) and os.environ.get("FAKE_ADB_NO_BENCHMARK") == "1"


def facts(cmd: str) -> int:
    """The runner's facts one-liner (hwnas.measure.runners.adb.facts_command): the model folder made, the tool
    looked for, its sha1 and the build properties, each answer on its tagged line as a phone's shell prints it."""
    folder = shlex.split(re.search(r"mkdir -p (.+?) 2>&1", cmd).group(1))[0]
    tool = shlex.split(re.search(r"\$\(ls (.+?) 2>&1\)", cmd).group(1))[0]
    phone(folder).mkdir(parents=True, exist_ok=True)
    print("dir ok")
    missing = tool_missing(tool)
    print(f"tool ls: {tool}: No such file or directory" if missing else f"tool {tool}")
    print("sha1 " if missing else f"sha1 {SHA1}  {tool}")
    for key in re.search(r"for k in (.+?); do", cmd).group(1).split():
        print(f"prop {key} {PROPS.get(key, '')}")
    return 0


def shell(cmd: str) -> int:
    if cmd.startswith("for z in /sys/class/thermal/thermal_zone*"):
        return temperatures()
    words = shlex.split(cmd)
    if words[:1] == ["taskset"]:
        words = words[2:]
    if not words:
        return 0
    prog = words[0]
    if prog == "mkdir":
        phone(words[-1]).mkdir(parents=True, exist_ok=True)
        return 0
    if prog == "ls":
        target = words[-1]
        if tool_missing(target):
            print(f"ls: {target}: No such file or directory", file=sys.stderr)
            return 1
        print(target)
        return 0
    if prog == "sha1sum":
        print(f"{SHA1}  {words[-1]}")
        return 0
    if prog == "getprop":
        print(PROPS.get(words[-1], ""))
        return 0
    if prog == "cat" and "power_supply/battery" in words[-1]:
        if os.environ.get("FAKE_ADB_BATTERY", "1") == "0":
            print(f"cat: {words[-1]}: Permission denied", file=sys.stderr)
            return 1
        print({"current_now": "-612000", "voltage_now": "3871000"}[words[-1].rsplit("/", 1)[1]])
        return 0
    if prog == "rm":
        p = phone(words[-1])
        if p.exists():
            p.unlink()
        return 0
    if prog == BM:
        if os.environ.get("FAKE_ADB_NO_BENCHMARK") == "1":
            print(f"/system/bin/sh: {BM}: not found", file=sys.stderr)
            return 127
        return benchmark(words[1:])
    if prog == PT:
        return perf_test(words[1:])
    print(f"/system/bin/sh: {prog}: not found", file=sys.stderr)
    return 127


def main(argv: list[str]) -> int:
    global ROOT, SERIAL
    ROOT.mkdir(parents=True, exist_ok=True)
    with open(ROOT / "calls.log", "a") as log:
        log.write(shlex.join(argv) + "\n")
    devices = [d for d in os.environ.get("FAKE_ADB_DEVICES", "FAKE0001").split(",")
               if d and not (BUS / "offline" / d).exists()]
    if argv[:1] == ["devices"]:
        print("List of devices attached")
        for d in devices:
            print(f"{d}\tdevice")
        print()
        return 0
    if argv[:1] == ["-s"]:
        serial, argv = argv[1], argv[2:]
        if serial not in devices:
            print(f"adb: device '{serial}' not found", file=sys.stderr)
            return 1
        if os.environ.get("FAKE_ADB_PER_SERIAL") == "1":
            ROOT, SERIAL = BUS / serial, serial
            ROOT.mkdir(parents=True, exist_ok=True)
    elif not devices:
        print("adb: no devices/emulators found", file=sys.stderr)
        return 1
    if argv[:1] == ["push"]:
        src, dst = argv[1], argv[2]
        phone(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, phone(dst))
        print(f"{src}: 1 file pushed, 0 skipped. 12.3 MB/s ({os.path.getsize(src)} bytes in 0.005s)")
        return 0
    if argv[:1] == ["shell"]:
        cmd = " ".join(argv[1:])
        return facts(cmd) if cmd.startswith('echo "dir $(mkdir -p ') else shell(cmd)
    print(f"adb: unknown command {argv[:1]}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
