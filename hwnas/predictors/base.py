"""The latency-predictor interface and its artifacts (``card.json`` + model files in safe formats).

    p = create_predictor("kernel")            # sklearn-style: the constructor only stores parameters
    p.fit(archs, latency_ms)                  # archs: Sequence[Arch] of one space; latency_ms: positive
    mean_ms, std_ms = p.predict(archs)
    p.save(Path("latency_models/host/nb201-kernel"))
    q = LatencyPredictor.load(Path("latency_models/host/nb201-kernel"))

An artifact directory holds ``card.json`` (kind, parameters, space and its settings, feature schema, training
data hash and count, cross-validated metrics, device and runtime when known, creation time, hwnas version, and
the SHA-256 of every model file) and model files written only as JSON, ``.npz`` (loaded with
``allow_pickle=False``) or LightGBM text. Loading checks the card's schema, re-hashes every file, refuses a
file the card does not list (and the model-file readers refuse any file whose hash the load did not check),
refuses NaN / infinite weights and compares the recorded feature schema with the one this hwnas computes; any
mismatch is an ``ArtifactError`` naming what differs (docs/security.md, "What is verified on load").
"""

from __future__ import annotations

import contextvars
import hashlib
import inspect
import json
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from ..contracts import Arch
from ..errors import HwnasError, ParametersError
from ..fileio import now_iso, sha256_file
from ..params import Params

CARD = "card.json"
ARTIFACT_FORMAT = 1


class PredictorError(ParametersError):
    """Bad training data or a predictor used before it was fitted (parameters it names are in backticks)."""


class UnknownOpError(PredictorError):
    """An arch uses an op / kernel the predictor never saw in training (it never counts as 0 ms)."""


class ArtifactError(HwnasError):
    """A predictor artifact is missing, corrupt, or does not match this space / feature schema."""


def data_hash(archs: Sequence[Arch], latency_ms) -> str:
    """A hash of the training data (arch ids and latencies), order-independent."""
    rows = sorted(f"{a.arch_id}:{float(y):.6g}" for a, y in zip(archs, latency_ms))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]




def save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})


# The files whose SHA-256 a load in progress has checked against its card (resolved paths). Every model file a
# loader reads goes through ``load_npz`` / ``read_model_json`` / ``read_model_text``, which refuse a file not in
# this set: a file the card does not list is never read, whatever its name.
_VERIFIED: contextvars.ContextVar = contextvars.ContextVar("hwnas_verified_artifact_files", default=None)


def _checked(path: Path) -> Path:
    verified = _VERIFIED.get()
    if verified is not None and Path(path).resolve() not in verified:
        raise ArtifactError(f"{Path(path).parent}: model file {Path(path).name!r} is not listed (with its SHA-256) "
                            f"in {CARD}; the artifact was modified: refit it with hwnas fit-predictor")
    return Path(path)


def _refuse_constant(name):
    raise ValueError(f"non-finite number {name}")


def load_npz(path: Path) -> dict:
    """The arrays of a ``.npz`` model file (no pickles); NaN / infinite values are refused."""
    path = _checked(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise ArtifactError(f"{path}: not a readable model file ({exc})") from None
    for k, a in arrays.items():
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            raise ArtifactError(f"{path}: array {k!r} holds NaN or infinite values (corrupt model file)")
    return arrays


def read_model_json(path: Path, expect=dict):
    """A JSON model file of an artifact (NaN / Infinity refused); ``expect``: the type its top level must have."""
    path = _checked(path)
    try:
        obj = json.loads(path.read_text(), parse_constant=_refuse_constant)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a valid JSON model file ({exc})") from None
    if not isinstance(obj, expect):
        raise ArtifactError(f"{path}: expected a JSON {getattr(expect, '__name__', expect)}, got "
                            f"{type(obj).__name__}")
    return obj


def read_model_text(path: Path) -> str:
    """A text model file of an artifact (LightGBM)."""
    path = _checked(path)
    try:
        return path.read_text()
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a readable model file ({exc})") from None


class LatencyPredictor(Params):
    """Base class: subclasses implement ``_fit(archs, y)``, ``_predict(archs)``, ``_save(dir) -> files``
    and ``_load(dir, card)``; ``kind`` names them in the registry and in ``card.json``."""

    kind: str = ""

    def __init__(self, space=None, seed: int = 0):
        self.space = space
        self.seed = seed

    # -- parameters (sklearn-style): get_params() from the constructor's signature (hwnas.params.Params) ------------
    def _json_params(self) -> dict:
        out = {}
        for k, v in self.get_params().items():
            if k in ("space", "sources"):
                continue
            out[k] = list(v) if isinstance(v, tuple) else v
        return out

    # -- fit / predict ------------------------------------------------------------------------------------
    def _resolve_space(self, archs):
        from ..spaces import create_space
        from .features import featurizer_for

        space = self.space
        if space is None:
            space = create_space(archs[0].space)
        self.space_ = space
        self.featurizer_ = featurizer_for(space)

    def fit(self, archs: Sequence[Arch], latency_ms) -> "LatencyPredictor":
        archs = list(archs)
        y = np.asarray(latency_ms, dtype=float).ravel()
        if not archs:
            raise PredictorError("cannot fit a latency predictor on no measurements")
        if len(archs) != len(y):
            raise PredictorError(f"{len(archs)} archs but {len(y)} latencies")
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise PredictorError("latencies must be positive finite numbers (ms)")
        if len(archs) < self.min_samples():
            raise PredictorError(f"the {self.kind} predictor needs at least {self.min_samples()} measured archs, "
                                 f"got {len(archs)}")
        self._resolve_space(archs)
        self.featurizer_.check(archs)
        self.n_train_ = len(archs)
        self.data_hash_ = data_hash(archs, y)
        self.info_ = getattr(self, "info_", {}) or {}
        self._memos = {}  # what was remembered about the old fit no longer holds
        with _one_blas_thread():
            self._fit(archs, y)
        self.fitted_ = True
        return self

    def memo(self, name: str) -> dict:
        """A per-arch-id cache named ``name`` that belongs to this fit (e.g. a transfer model's view of its
        sources: ``predictors.transfer``); ``fit()`` starts every one empty."""
        if not hasattr(self, "_memos"):  # a loaded artifact: never fitted in this process
            self._memos = {}
        return self._memos.setdefault(name, {})

    def min_samples(self) -> int:
        return 3

    def predict(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        if not getattr(self, "fitted_", False):
            raise PredictorError(f"the {self.kind} predictor is not fitted: call fit() or load an artifact")
        archs = self.featurizer_.check(archs)
        if not archs:
            return np.zeros(0), np.zeros(0)
        with _one_blas_thread():
            mean, std = self._predict(archs)
        return np.asarray(mean, float), np.asarray(std, float)

    def _fit(self, archs, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict(self, archs):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- unseen ops -----------------------------------------------------------------------------------------
    @staticmethod
    def _unseen_names(X: np.ndarray, seen: np.ndarray, names: Sequence[str]) -> list:
        """Per row of ``X``: the first feature never seen in training that the row uses (a name), else None."""
        bad = (X[:, ~seen] != 0)
        cols = np.flatnonzero(~seen)
        out = [None] * len(X)
        for r in np.flatnonzero(bad.any(1)):
            out[r] = names[cols[np.argmax(bad[r])]].split(":count")[0]
        return out

    @classmethod
    def _check_seen(cls, X: np.ndarray, seen: np.ndarray, names: Sequence[str], archs, space, what: str) -> None:
        unseen = cls._unseen_names(X, seen, names)
        r = next((i for i, u in enumerate(unseen) if u is not None), None)
        if r is not None:
            try:
                arch_text = space.to_string(archs[r])
            except Exception:  # noqa: BLE001 - only the message's arch text: the UnknownOpError is raised either way
                arch_text = archs[r].arch_id
            raise UnknownOpError(f"{what} {unseen[r]!r} of arch {arch_text} never occurred in "
                                 f"the training data; measure archs that use it and refit (it is not counted as 0 ms)")

    def unseen_ops(self, archs: Sequence[Arch]) -> list:
        """Per arch: the name of an op / kernel it uses that never occurred in training (so ``predict`` would
        raise ``UnknownOpError`` for it), else None. Kinds with a ``seen_`` mask answer without predicting."""
        if not getattr(self, "fitted_", False):
            raise PredictorError(f"the {self.kind} predictor is not fitted: call fit() or load an artifact")
        archs = self.featurizer_.check(archs)
        if not archs:
            return []
        if hasattr(self, "_unseen"):
            return self._unseen(archs)
        out = []
        for a in archs:  # generic (slow) path: ask predict
            try:
                self.predict([a])
                out.append(None)
            except UnknownOpError as exc:
                out.append(str(exc).split("'")[1] if "'" in str(exc) else "unknown op")
        return out

    # -- card ----------------------------------------------------------------------------------------------
    def set_card(self, **fields) -> "LatencyPredictor":
        """Extra card fields (device, runtime, runtime_version, cv_metrics, name, ...)."""
        self.info_ = {**(getattr(self, "info_", {}) or {}), **fields}
        return self

    @property
    def card(self) -> dict:
        if not getattr(self, "fitted_", False):
            raise PredictorError(f"the {self.kind} predictor is not fitted: it has no card yet")
        from .. import __version__

        card = {
            "format": ARTIFACT_FORMAT,
            "kind": self.kind,
            "name": self.info_.get("name", f"{self.space_.name}-{self.kind}"),
            "params": self._json_params(),
            "space": self.space_.name,
            "space_config": self.space_.config(),
            "feature_schema": self.featurizer_.schema(),
            "training": {"count": self.n_train_, "data_hash": self.data_hash_},
            "hwnas_version": __version__,
            "created_at": getattr(self, "created_at_", None) or now_iso(),
        }
        card.update(self._card_extra())
        for k, v in self.info_.items():
            card.setdefault(k, v)
        return card

    def _card_extra(self) -> dict:
        return {}

    # -- artifacts ------------------------------------------------------------------------------------------
    def save(self, directory: Path | str, extra: dict[str, str] | None = None) -> Path:
        """Write the artifact to ``directory`` (replaced as a whole; written to a temporary sibling first).
        ``extra``: {file name: text} written beside the card and listed in it with its SHA-256 (a report)."""
        directory = Path(directory)
        card = self.card
        if not directory.parent.exists():
            directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.with_name(directory.name + ".tmp-writing")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            files = list(self._save(tmp))
            for name, text in (extra or {}).items():
                (tmp / name).write_text(text, encoding="utf-8")
                files.append(name)
            card["files"] = {f: sha256_file(tmp / f) for f in sorted(files)}
            (tmp / CARD).write_text(json.dumps(card, indent=2, sort_keys=True, default=_json_default) + "\n")
            if directory.exists():
                shutil.rmtree(directory)
            tmp.rename(directory)
        except BaseException:  # any exit, Ctrl-C included: no half-written artifact stays behind; re-raised
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.created_at_ = card["created_at"]
        return directory

    def _save(self, directory: Path) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path | str, space=None) -> "LatencyPredictor":
        """Load an artifact; ``space`` (a space object or name), when given, must match the card's."""
        directory = Path(directory)
        with verified_files():
            return cls._load_verified(directory, space)

    @classmethod
    def _load_verified(cls, directory: Path, space) -> "LatencyPredictor":
        from . import PREDICTORS

        card = read_card(directory)
        kind = card.get("kind")
        if kind not in PREDICTORS or kind == "auto":
            raise ArtifactError(f"{directory}: unknown predictor kind {kind!r} in {CARD}")
        klass = PREDICTORS[kind]
        if cls is not LatencyPredictor and not issubclass(klass, cls):
            raise ArtifactError(f"{directory} holds a {kind} predictor, not a {cls.kind}")
        sp = _space_from_card(directory, card, space)
        params = {k: (tuple(v) if isinstance(v, list) else v) for k, v in card.get("params", {}).items()}
        sig = inspect.signature(klass.__init__).parameters
        obj = klass(**{k: v for k, v in params.items() if k in sig})
        obj.space = sp
        obj.space_ = sp
        from .features import featurizer_for

        obj.featurizer_ = featurizer_for(sp)
        want = card.get("feature_schema")
        have = obj.featurizer_.schema()
        if want != json.loads(json.dumps(have)):
            diff = [k for k in sorted(set(want or {}) | set(have)) if (want or {}).get(k) != have.get(k)]
            raise ArtifactError(f"{directory}: feature schema mismatch ({', '.join(diff)}): the artifact was "
                                f"trained on {want} but this hwnas computes {have}; refit it with hwnas fit-predictor")
        obj.n_train_ = card["training"]["count"]
        obj.data_hash_ = card["training"]["data_hash"]
        obj.created_at_ = card.get("created_at")
        std_keys = {"format", "kind", "name", "params", "space", "space_config", "feature_schema", "training",
                    "hwnas_version", "created_at", "files"}
        obj.info_ = {k: v for k, v in card.items() if k not in std_keys}
        obj.info_["name"] = card.get("name")
        try:
            obj._load(directory, card)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ArtifactError(f"{directory}: corrupt model file ({type(exc).__name__}: {exc}); refit the "
                                "predictor with hwnas fit-predictor") from None
        obj.fitted_ = True
        obj.artifact_dir_ = directory
        return obj

    def _load(self, directory: Path, card: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


_BLAS = {"depth": 0, "controller": None}


class _one_blas_thread:
    """The matrices here are small: a multi-threaded BLAS only thrashes (100x slower on a busy 2-core host).
    Re-entrant and cheap when nested (threadpoolctl inspects the loaded libraries only once)."""

    def __enter__(self):
        if _BLAS["depth"] == 0:
            from threadpoolctl import ThreadpoolController

            if _BLAS["controller"] is None:
                _BLAS["controller"] = ThreadpoolController()
            self._limit = _BLAS["controller"].limit(limits=1, user_api="blas")
        _BLAS["depth"] += 1
        return self

    def __exit__(self, *exc):
        _BLAS["depth"] -= 1
        if _BLAS["depth"] == 0:
            self._limit.restore_original_limits()
        return False


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


class verified_files:
    """The context of one artifact load (re-entrant: a nested artifact joins its parent's): the files whose hash
    ``read_card`` checked; the model-file readers refuse any other."""

    def __enter__(self):
        self._token = _VERIFIED.set(set()) if _VERIFIED.get() is None else None
        return self

    def __exit__(self, *exc):
        if self._token is not None:
            _VERIFIED.reset(self._token)
        return False


_HEX64 = set("0123456789abcdef")


def _card_schema_error(card: dict) -> str | None:
    """What is wrong with the types of a parsed card (None: nothing)."""
    def is_str(v):
        return isinstance(v, str) and v != ""

    if not is_str(card.get("kind")):
        return f"'kind' must be a string, got {card.get('kind')!r}"
    if "name" in card and card["name"] is not None and not is_str(card["name"]):
        return f"'name' must be a string, got {card['name']!r}"
    if not is_str(card.get("space")):
        return f"'space' must be a string, got {card.get('space')!r}"
    for key in ("space_config", "feature_schema", "training", "files"):
        if not isinstance(card.get(key), dict):
            return f"{key!r} must be a JSON object, got {type(card.get(key)).__name__}"
    if "params" in card and not isinstance(card["params"], dict):
        return f"'params' must be a JSON object, got {type(card['params']).__name__}"
    if any(not isinstance(k, str) for k in card["space_config"]):
        return "'space_config' keys must be strings"
    tr = card["training"]
    count = tr.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        return f"'training.count' must be a whole number >= 0, got {count!r}"
    if not is_str(tr.get("data_hash")):
        return f"'training.data_hash' must be a string, got {tr.get('data_hash')!r}"
    return _card_files_error(card["files"]) or _card_strings_error(card)


def _card_strings_error(card: dict) -> str | None:
    for key in ("created_at", "hwnas_version", "device", "runtime"):
        if key in card and card[key] is not None and not isinstance(card[key], str):
            return f"{key!r} must be a string, got {card[key]!r}"
    return None


def _card_files_error(files: dict) -> str | None:
    """What is wrong with a card's ``files`` (plain file name -> SHA-256), or None."""
    if not files:
        return "'files' lists no model file"
    for name, digest in files.items():
        if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX64):
            return f"'files' entry {name!r} must map to a SHA-256 (64 hex digits), got {digest!r}"
        parts = Path(name).parts
        if (not name or Path(name).is_absolute() or ".." in parts or "\\" in name or name == CARD
                or name != Path(name).as_posix()):
            return f"'files' entry {name!r} is not a plain file name inside the artifact"
    return None


def parse_card(path: Path) -> dict:
    """``card.json`` parsed and its schema checked (no hashes): ArtifactError "corrupt card" otherwise."""
    path = Path(path)
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: corrupt card (not valid JSON: {exc}); refit the predictor with "
                            "hwnas fit-predictor") from None
    if not isinstance(card, dict) or card.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{path}: artifact format {card.get('format') if isinstance(card, dict) else None!r} "
                            f"is not {ARTIFACT_FORMAT}; refit it with this hwnas")
    for key in ("kind", "space", "space_config", "feature_schema", "training", "files"):
        if key not in card:
            raise ArtifactError(f"{path}: corrupt card (missing key {key!r})")
    bad = _card_schema_error(card)
    if bad:
        raise ArtifactError(f"{path}: corrupt card ({bad})")
    return card


def read_card(directory: Path) -> dict:
    """Read ``card.json``, check its schema, the SHA-256 of every file it lists, and that the directory holds no
    file it does not list (a nested artifact, listed by its ``card.json``, is checked when it is loaded)."""
    directory = Path(directory)
    path = directory / CARD
    if path.is_symlink() or not path.is_file():
        raise ArtifactError(f"{directory} is not a predictor artifact: {CARD} is missing"
                            + (" (a symlink)" if path.is_symlink() else ""))
    card = parse_card(path)
    root = directory.resolve()
    verified = _VERIFIED.get()
    for name, digest in card["files"].items():
        f = directory / name
        if f.is_symlink() or not f.is_file() or not f.resolve().is_relative_to(root):
            raise ArtifactError(f"{directory}: model file {name!r} listed in {CARD} is missing"
                                + (" (a symlink: artifacts hold plain files only)" if f.is_symlink() else ""))
        if sha256_file(f) != digest:
            raise ArtifactError(f"{directory}: model file {name!r} does not match the SHA-256 in {CARD} "
                                "(modified or corrupt)")
        if verified is not None:
            verified.add(f.resolve())
    nested = {Path(n).parent for n in card["files"] if Path(n).name == CARD and Path(n).parent != Path(".")}
    for f in sorted(directory.rglob("*")):
        rel = f.relative_to(directory)
        if f.is_dir() and not f.is_symlink():
            continue
        if rel.as_posix() == CARD or rel.as_posix() in card["files"]:
            continue
        if any(rel.is_relative_to(n) for n in nested):
            continue
        raise ArtifactError(f"{directory}: file {rel.as_posix()!r} is not listed (with its SHA-256) in {CARD}; "
                            "an artifact holds only the files its card lists: remove it or refit the predictor")
    return card


def _space_from_card(directory: Path, card: dict, space):
    from ..spaces import create_space

    if space is not None:
        name = space if isinstance(space, str) else space.name
        if name != card["space"]:
            raise ArtifactError(f"{directory} predicts space {card['space']!r}, not {name!r}")
        if not isinstance(space, str):
            if space.config() != card["space_config"]:
                raise ArtifactError(f"{directory} was trained on {card['space']} with settings "
                                    f"{card['space_config']}, not {space.config()}")
            return space
    try:
        return create_space(card["space"], **card["space_config"])
    except HwnasError as exc:
        raise ArtifactError(f"{directory}: {exc}") from None
    except TypeError:
        raise ArtifactError(f"{directory}: space settings {card['space_config']} are not valid for "
                            f"{card['space']!r} in this hwnas") from None


__all__ = ["LatencyPredictor", "PredictorError", "UnknownOpError", "ArtifactError", "read_card", "parse_card",
           "data_hash", "save_npz", "load_npz", "read_model_json", "read_model_text", "verified_files", "CARD"]
