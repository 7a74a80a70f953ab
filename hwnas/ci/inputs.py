"""Inputs of the CI check: model files / directories / arch strings, and what to compare them against
(a file, a directory of same-named files, a git ref, an arch string or an arch-list file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import HwnasError, ParameterError, ParametersError
from ..fileio import read_text
from ..spaces import parse_arch_table

MODEL_SUFFIXES = (".onnx", ".tflite")


@dataclass
class ModelSpec:
    """One model to check: the candidate file and, when measured in the same job, the baseline file."""

    name: str
    candidate: Path
    baseline: Path | None = None
    candidate_label: str = ""
    baseline_label: str | None = None
    note: str = ""  # e.g. why there is no baseline



def _git(args: list[str], cwd: Path, binary: bool = False):
    import subprocess

    try:
        return subprocess.run(["git", *args], cwd=str(cwd), capture_output=True, text=not binary, timeout=120)
    except FileNotFoundError:
        raise ParametersError("git is not installed, so `against` cannot read a git ref") from None


def is_git_ref(ref: str, cwd: Path) -> bool:
    if ref.startswith("-"):
        return False
    proc = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd)
    return proc.returncode == 0


def git_file_at(ref: str, path: Path, dest: Path) -> Path | None:
    """Write ``path`` (a file in a git work tree) as it was at ``ref`` to ``dest``; None if it did not exist."""
    path = Path(path).resolve()
    top = _git(["rev-parse", "--show-toplevel"], path.parent)
    if top.returncode != 0:
        raise ParameterError("against", f"{ref}: {path} is not inside a git repository")
    rel = path.relative_to(Path(top.stdout.strip()).resolve()).as_posix()
    proc = _git(["show", f"{ref}:{rel}"], path.parent, binary=True)
    if proc.returncode != 0:
        return None
    data = proc.stdout
    if data.startswith(b"version https://git-lfs"):
        raise ParameterError("against", f"{ref}: {rel} is a Git LFS pointer at that ref; fetch LFS objects first "
                             "(git lfs fetch origin <ref>) or pass the baseline files as a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


def _expand_models(inputs: Sequence[str]) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix in MODEL_SUFFIXES and q.is_file())
            if not found:
                raise HwnasError(f"directory {p} holds no .onnx or .tflite files")
            out += [(q.relative_to(p).as_posix(), q) for q in found]
        elif p.is_file():
            if p.suffix not in MODEL_SUFFIXES:
                raise HwnasError(f"{p}: expected a .onnx or .tflite model file")
            out.append((p.name, p))
        else:
            raise ParametersError(f"model file {p} does not exist (to check arch strings, pass `space`)")
    return out


def resolve_model_files(inputs: Sequence[str], against: str | None, workdir: Path) -> list[ModelSpec]:
    """Model files / directories as candidates, paired with a baseline file, directory or git ref; an empty
    (0-byte) model is refused by its own name before anything is loaded."""
    specs = _resolve_model_files(inputs, against, workdir)
    for spec in specs:
        for role, path, label in (("candidate", spec.candidate, spec.candidate_label),
                                  ("baseline", spec.baseline, spec.baseline_label)):
            if path is not None and Path(path).stat().st_size == 0:
                raise HwnasError(f"{role} model {label or path} is empty (0 bytes)")
    return specs


def _resolve_model_files(inputs: Sequence[str], against: str | None, workdir: Path) -> list[ModelSpec]:
    cands = _expand_models(inputs)
    if against is None:
        return [ModelSpec(name=n, candidate=p, candidate_label=str(p)) for n, p in cands]
    ref_path = Path(against)
    specs: list[ModelSpec] = []
    if ref_path.is_file():
        if len(cands) != 1:
            raise ParameterError("against", f"{against} is one file but {len(cands)} candidates were given; "
                                 "pass a directory or a git ref to compare several models")
        n, p = cands[0]
        return [ModelSpec(name=n, candidate=p, baseline=ref_path, candidate_label=str(p), baseline_label=str(ref_path))]
    if ref_path.is_dir():
        for n, p in cands:
            b = ref_path / n
            if not b.is_file() and (ref_path / p.name).is_file():
                b = ref_path / p.name
            if b.is_file():
                specs.append(ModelSpec(n, p, b, str(p), str(b)))
            else:
                specs.append(ModelSpec(n, p, None, str(p), None, note=f"new model: no {n} in {against}"))
        return specs
    if not is_git_ref(against, Path(cands[0][1]).resolve().parent):
        raise ParameterError("against", f"{against!r} is not a file, a directory or a git ref")
    for i, (n, p) in enumerate(cands):
        b = git_file_at(against, p, Path(workdir) / "against" / f"{i}" / p.name)
        if b is None:
            specs.append(ModelSpec(n, p, None, str(p), None, note=f"new model: {p} does not exist at {against}"))
        else:
            specs.append(ModelSpec(n, p, b, str(p), f"{against}:{p}"))
    return specs


def resolve_archs(space, archs: Sequence[str], arch_file: Path | None, against: str | None, settings) -> list[ModelSpec]:
    """Arch strings of ``space`` (exported with ``settings``), paired with baseline arch strings.

    ``against``: one arch string (one candidate), an arch-list file, or a git ref at which ``arch_file`` is
    read; rows pair by their ``name`` column when there is one, else by position.
    """
    from ..export import export_arch
    from ..spaces import arch_from_text

    rows: list[tuple[str | None, str]] = [(None, a) for a in archs]
    if arch_file is not None:
        if not Path(arch_file).is_file():
            raise HwnasError(f"arch file {arch_file} does not exist")
        rows += parse_arch_table(read_text(Path(arch_file), "arch file"))
    if not rows:
        raise HwnasError("nothing to check: no arch strings and no arch file")
    base_rows: list[tuple[str | None, str]] | None = None
    where = against
    if against is not None:
        if Path(against).is_file():
            base_rows = parse_arch_table(read_text(Path(against), "arch file"))
        elif arch_file is not None and is_git_ref(against, Path(arch_file).resolve().parent):
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                got = git_file_at(against, Path(arch_file), Path(tmp) / "archs.txt")
                base_rows = parse_arch_table(read_text(got, "arch file")) if got else []
            where = f"{arch_file} at {against}"
        else:
            if len(rows) != 1:
                raise ParameterError("against", f"{against!r}: one baseline arch for {len(rows)} candidates; give an "
                                     "arch-list file, or a git ref at which the arch file is read")
            base_rows = [(None, against)]

    def export(text: str) -> tuple[Path, str]:
        a = arch_from_text(space, text)
        return export_arch(space, a, settings), space.to_string(a)

    named = {n: a for n, a in (base_rows or []) if n}
    specs = []
    for i, (name, text) in enumerate(rows):
        path, canon = export(text)
        label = name or canon
        base_text = None
        if base_rows is not None:
            if name and named:
                base_text = named.get(name)
            elif i < len(base_rows):
                base_text = base_rows[i][1]
        if base_text is None:
            note = f"new model: no baseline arch in {where}" if against is not None else ""
            specs.append(ModelSpec(label, path, None, canon, None, note=note))
        else:
            bpath, bcanon = export(base_text)
            specs.append(ModelSpec(label, path, bpath, canon, bcanon))
    return specs
