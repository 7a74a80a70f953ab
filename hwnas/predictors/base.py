"""The latency-predictor interface and its artifacts (``card.json`` + model files in safe formats).

    p = create_predictor("kernel")            # sklearn-style: the constructor only stores parameters
    p.fit(archs, latency_ms)                  # archs: Sequence[Arch] of one space; latency_ms: positive
    mean_ms, std_ms = p.predict(archs)
    p.save(Path("latency_models/host/nb201-kernel"))
    q = LatencyPredictor.load(Path("latency_models/host/nb201-kernel"))

An artifact directory holds ``card.json`` (kind, parameters, space and its settings, feature schema, training
data hash and count, cross-validated metrics, device and runtime when known, creation time, hwnas version, and
the SHA-256 of every model file) and model files written only as JSON, ``.npz`` (loaded with
``allow_pickle=False``) or LightGBM text. Loading re-hashes every file and compares the recorded feature
schema with the one this hwnas computes; any mismatch is an ``ArtifactError`` naming what differs.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from ..contracts import Arch
from ..errors import HwnasError
from ..io import now_iso, sha256_file
from ..params import Params

CARD = "card.json"
ARTIFACT_FORMAT = 1


class PredictorError(HwnasError):
    """Bad training data or a predictor used before it was fitted."""


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


def load_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
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
        with _one_blas_thread():
            self._fit(archs, y)
        self.fitted_ = True
        return self

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
            except Exception:  # noqa: BLE001 - only for the message
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
    def save(self, directory: Path | str) -> Path:
        """Write the artifact to ``directory`` (replaced as a whole; written to a temporary sibling first)."""
        directory = Path(directory)
        card = self.card
        if not directory.parent.exists():
            directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.with_name(directory.name + ".tmp-writing")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            files = self._save(tmp)
            card["files"] = {f: sha256_file(tmp / f) for f in sorted(files)}
            (tmp / CARD).write_text(json.dumps(card, indent=2, sort_keys=True, default=_json_default) + "\n")
            if directory.exists():
                shutil.rmtree(directory)
            tmp.rename(directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.created_at_ = card["created_at"]
        return directory

    def _save(self, directory: Path) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def load(cls, directory: Path | str, space=None) -> "LatencyPredictor":
        """Load an artifact; ``space`` (a space object or name), when given, must match the card's."""
        from . import PREDICTORS

        directory = Path(directory)
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
        obj._load(directory, card)
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


def read_card(directory: Path) -> dict:
    """Read and verify ``card.json`` and the hashes of the files it lists."""
    path = Path(directory) / CARD
    if not path.is_file():
        raise ArtifactError(f"{directory} is not a predictor artifact: {CARD} is missing")
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(card, dict) or card.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{path}: artifact format {card.get('format') if isinstance(card, dict) else None!r} "
                            f"is not {ARTIFACT_FORMAT}; refit it with this hwnas")
    for key in ("kind", "space", "space_config", "feature_schema", "training", "files"):
        if key not in card:
            raise ArtifactError(f"{path}: missing key {key!r}")
    for name, digest in card["files"].items():
        f = Path(directory) / name
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts or not f.is_file():
            raise ArtifactError(f"{directory}: model file {name!r} listed in {CARD} is missing")
        if sha256_file(f) != digest:
            raise ArtifactError(f"{directory}: model file {name!r} does not match the SHA-256 in {CARD} "
                                "(modified or corrupt)")
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


__all__ = ["LatencyPredictor", "PredictorError", "UnknownOpError", "ArtifactError", "read_card", "data_hash",
           "save_npz", "load_npz", "CARD"]
