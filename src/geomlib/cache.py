"""A results cache keyed by a hash of the full configuration.

A trained model is stored as ``<root>/<name>-<hash>/`` holding ``model.pt`` (a state dict),
``record.json`` (history and anything else JSON) and ``manifest.json`` (the key and the SHA-256
of both files). An entry is only used when its manifest matches the requested key and both
hashes; a corrupt or mismatched entry is reported and recomputed, never silently used. Entries
are written to a temporary folder and renamed into place, so a crash leaves no half entry.

Shipped runs (``data/runs`` in the repository) are looked up read-only after the cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch

from .claims import write_json_atomic

__all__ = ["config_hash", "cache_root", "cached_run", "CacheWarning", "shipped_data"]

CACHE_VERSION = 1
_REPO_DATA = Path(__file__).resolve().parents[2] / "data" / "runs"


class CacheWarning(UserWarning):
    pass


def config_hash(key: dict) -> str:
    blob = json.dumps({"v": CACHE_VERSION, **key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_root() -> Path:
    return Path(os.environ.get("GEOMLIB_CACHE", Path.home() / ".cache" / "geomlib"))


def shipped_data(name: str) -> Path | None:
    """A file shipped in the repository's ``data/`` folder (None when geomlib is installed
    without the repository, e.g. in Colab)."""
    path = _REPO_DATA.parent / name
    return path if path.is_file() else None


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(entry: Path, key: dict, model: torch.nn.Module) -> dict:
    manifest = json.loads((entry / "manifest.json").read_text())
    if json.loads(json.dumps(key, sort_keys=True, default=str)) != manifest.get("key"):
        raise ValueError("its stored configuration differs from the requested one")
    for name in ("model.pt", "record.json"):
        if _sha(entry / name) != manifest["sha256"][name]:
            raise ValueError(f"{name} does not match its checksum")
    state = torch.load(entry / "model.pt", map_location=next(model.parameters()).device, weights_only=True)
    model.load_state_dict(state)
    return json.loads((entry / "record.json").read_text())


def cached_run(name: str, key: dict, model: torch.nn.Module, fit: Callable[[torch.nn.Module], dict],
               retrain: bool = False, verbose: bool = True) -> tuple[torch.nn.Module, dict]:
    """Return ``(model, record)``: loaded from the cache if an intact entry for ``key`` exists,
    else trained by ``fit(model)`` (which returns a JSON-able record) and stored.

    ``key`` must hold everything that determines the result (task, model, training, seed)."""
    h = config_hash(key)
    entry = cache_root() / f"{name}-{h}"
    for candidate in ([] if retrain else [entry, _REPO_DATA / f"{name}-{h}"]):
        if not candidate.exists():
            continue
        try:
            record = _load(candidate, key, model)
            if verbose:
                print(f"loaded {name} from {candidate} (config hash {h})")
            return model, record
        except Exception as e:  # noqa: BLE001 - any damage means: do not trust this entry
            warnings.warn(f"cache entry {candidate} is unusable ({e}); recomputing it", CacheWarning, stacklevel=2)
    record = fit(model)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    try:
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp / "model.pt")
        write_json_atomic(tmp / "record.json", record)
        write_json_atomic(tmp / "manifest.json", {"key": json.loads(json.dumps(key, sort_keys=True, default=str)),
                                                   "sha256": {n: _sha(tmp / n) for n in ("model.pt", "record.json")}})
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(tmp, entry)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return model, record
