"""Chunked on-disk storage of offline trajectories: `shard_XXXXX.npz` files plus `manifest.json`.

Each shard holds E episodes: pixels uint8[E, T+1, H, W, 3], proprio f32[E, T+1, P], actions f32[E, T, A],
states f32[E, T+1, S], task_ids i32[E] (and contact f32[E] where the task reports contact). Shards are
written uncompressed (zip "stored") so a reader can memory-map each array without loading it.

`manifest.json` lists the shards; each entry holds `file`, `episodes`, `bytes` (the file size) and
`checksum`: `sha256:<hex>` of the file, or (entries written before commit 201386a of 2026-12-02, told apart by the missing
`sha256:` prefix) a 16-digit sha1 of the actions, states and task_ids; such entries may lack `bytes` until a
resumed collection records it. `verify_shard` checks a shard against its entry.
"""
import hashlib
import json
import os
from typing import Any
import zipfile

import numpy as np

from adajepa_jax.errors import UsageError

MANIFEST = "manifest.json"
SHARD_KEYS = ("pixels", "proprio", "actions", "states", "task_ids")


def shard_name(index: int) -> str:
  return f"shard_{index:05d}.npz"


def fingerprint(config: dict[str, Any]) -> str:
  """A short stable hash of a JSON-serialisable config dict."""
  return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ShardError(UsageError):
  """A shard that is missing, unreadable or differs from its manifest entry; the message says how to
  re-collect it. `path` is the shard's path, `problem` what is wrong with it."""

  def __init__(self, path, problem, message):
    super().__init__(message)
    self.path, self.problem = path, problem


def write_shard(data_dir: str, index: int, arrays: dict[str, Any]) -> dict[str, Any]:
  """Writes one shard atomically (temp file + rename).

  Args:
    data_dir: directory of the dataset.
    index: shard number.
    arrays: dict with at least `SHARD_KEYS` (numpy arrays, leading axis = episodes).

  Returns:
    The shard's manifest fields: {'file': name, 'bytes': size, 'checksum': 'sha256:<hex>'}.
  """
  missing = [k for k in SHARD_KEYS if k not in arrays]
  if missing:
    raise ValueError(f"Shard is missing arrays {missing}; required: {', '.join(SHARD_KEYS)}")
  os.makedirs(data_dir, exist_ok=True)
  name = shard_name(index)
  tmp = os.path.join(data_dir, name + ".tmp.npz")
  np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
  record = dict(file=name, bytes=os.path.getsize(tmp), checksum=_file_checksum(tmp))
  os.replace(tmp, os.path.join(data_dir, name))
  return record


def _file_checksum(path):
  with open(path, "rb") as f:
    return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def _legacy_checksum(path):
  """The checksum of manifests without shard sizes: sha1 of the actions, states and task_ids, 16 digits."""
  arrays = open_shard(path)
  digest = hashlib.sha1()
  for k in ("actions", "states", "task_ids"):
    digest.update(np.ascontiguousarray(arrays[k]).tobytes())
  return digest.hexdigest()[:16]


def _checksum(path, expected):
  """The shard's checksum in the format of `expected`, or a description of why the file is unreadable."""
  if expected.startswith("sha256:"):
    return _file_checksum(path)
  try:
    return _legacy_checksum(path)
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    return f"an unreadable file ({type(e).__name__}: {e})"


def recollect_command(data_dir: str, manifest: dict[str, Any]) -> str:
  """The `experiments/collect_data.py` command line that collects `manifest`'s dataset again into
  `data_dir` (its workdir's `data/`): the task's config file with every recorded setting as an override."""
  task = manifest.get("task", "<task>")
  name = "pointmaze" if task.startswith("pointmaze") else task
  flags = [f"--config=adajepa_jax/configs/{name}.py:cpu", f"--config.task.name={task}"]
  for k, v in sorted(manifest.get("kwargs", {}).items()):
    if k != "image_size":
      flags.append(f'--config.task.kwargs.{k}="{tuple(v)!r}"' if isinstance(v, (list, tuple))
                   else f"--config.task.kwargs.{k}={v}")
  flags += [f"--config.task.kwargs.image_size={manifest['image_size']}",
            f"--config.data.episodes={manifest['episodes']}", f"--config.data.length={manifest['length']}",
            f"--config.data.seed={manifest['seed']}", f"--config.data.shard_episodes={manifest['shard_episodes']}",
            f"--config.data.expert_fraction={manifest.get('expert_fraction', 0.0):g}"]
  workdir, base = os.path.split(os.path.abspath(data_dir))
  flags.append(f"--workdir={workdir}" if base == "data"
               else f"--workdir=WORKDIR (it writes WORKDIR/data, not {data_dir})")
  return " ".join(["python experiments/collect_data.py"] + flags)


def verify_shard(data_dir: str, manifest: dict[str, Any], entry: dict[str, Any], checksum: bool = False) -> None:
  """Checks one shard against its manifest entry: its byte size, and its checksum when `checksum` is True
  or the entry has no size (older manifests).

  Args:
    data_dir: directory of the dataset.
    manifest: the dataset's manifest (for the re-collect command in the error).
    entry: the shard's entry in `manifest['shards']`.
    checksum: also compare the checksum (reads the file).

  Raises:
    ShardError: the shard is missing or differs from its entry; the message names the shard, what the
      manifest expects and what was found, and the command that re-collects it.
  """
  path = os.path.join(data_dir, entry["file"])
  if not os.path.exists(path):
    problem = "is missing"
  elif "bytes" in entry and os.path.getsize(path) != entry["bytes"]:
    problem = f"has the wrong size: expected {entry['bytes']} bytes, found {os.path.getsize(path)}"
  elif checksum or "bytes" not in entry:
    found = _checksum(path, entry["checksum"])
    problem = None if found == entry["checksum"] else (
        f"has the wrong checksum: expected {entry['checksum']}, found {found}")
  else:
    problem = None
  if problem is not None:
    raise ShardError(path, problem, (
        f"Shard {path} {problem} (per {os.path.join(data_dir, MANIFEST)}). Re-collect it (collection "
        "resumes: it keeps the shards that pass their checksum and rewrites the others): "
        f"{recollect_command(data_dir, manifest)}"))


def write_manifest(data_dir: str, manifest: dict[str, Any]) -> None:
  tmp = os.path.join(data_dir, MANIFEST + ".tmp")
  with open(tmp, "w") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
  os.replace(tmp, os.path.join(data_dir, MANIFEST))


def read_manifest(data_dir: str) -> dict[str, Any]:
  path = os.path.join(data_dir, MANIFEST)
  if not os.path.exists(path):
    raise UsageError(f"No {MANIFEST} in {data_dir!r}: not a dataset directory "
                     "(run experiments/collect_data.py)")
  with open(path) as f:
    return json.load(f)


def _memmap_member(path, info):
  """Memory-maps one .npy member stored uncompressed inside a .npz archive."""
  with open(path, "rb") as f:
    f.seek(info.header_offset)
    local = f.read(30)
    if local[:4] != b"PK\x03\x04":
      raise ValueError(f"Corrupt shard {path!r}: bad zip header for {info.filename}")
    name_len = int.from_bytes(local[26:28], "little")
    extra_len = int.from_bytes(local[28:30], "little")
    f.seek(info.header_offset + 30 + name_len + extra_len)
    version = np.lib.format.read_magic(f)
    fmt = np.lib.format
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read_header(f)
    offset = f.tell()
  if dtype.hasobject:
    raise ValueError(f"Shard {path!r} member {info.filename} holds Python objects; refusing to load it")
  return np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset, order="F" if fortran else "C")


def open_shard(path: str) -> dict[str, np.ndarray]:
  """Opens a shard lazily: dict name -> read-only array (memory-mapped where stored uncompressed)."""
  out = {}
  with zipfile.ZipFile(path) as zf:
    for info in zf.infolist():
      key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
      if info.compress_type == zipfile.ZIP_STORED:
        out[key] = _memmap_member(path, info)
      else:
        with zf.open(info) as f:
          out[key] = np.lib.format.read_array(f, allow_pickle=False)
  return out
