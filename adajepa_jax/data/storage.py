"""Chunked on-disk storage of offline trajectories: `shard_XXXXX.npz` files plus `manifest.json`.

Each shard holds E episodes: pixels uint8[E, T+1, H, W, 3], proprio f32[E, T+1, P], actions f32[E, T, A],
states f32[E, T+1, S], task_ids i32[E] (and contact f32[E] where the task reports contact). Shards are
written uncompressed (zip "stored") so a reader can memory-map each array without loading it.
"""
import hashlib
import json
import os
import zipfile

import numpy as np

MANIFEST = "manifest.json"
SHARD_KEYS = ("pixels", "proprio", "actions", "states", "task_ids")


def shard_name(index):
  return f"shard_{index:05d}.npz"


def fingerprint(config):
  """A short stable hash of a JSON-serialisable config dict."""
  return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def write_shard(data_dir, index, arrays):
  """Writes one shard atomically (temp file + rename) and returns its file name and a content checksum.

  Args:
    data_dir: directory of the dataset.
    index: shard number.
    arrays: dict with at least `SHARD_KEYS` (numpy arrays, leading axis = episodes).
  """
  missing = [k for k in SHARD_KEYS if k not in arrays]
  if missing:
    raise ValueError(f"Shard is missing arrays {missing}; required: {', '.join(SHARD_KEYS)}")
  os.makedirs(data_dir, exist_ok=True)
  name = shard_name(index)
  tmp = os.path.join(data_dir, name + ".tmp.npz")
  np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
  os.replace(tmp, os.path.join(data_dir, name))
  digest = hashlib.sha1()
  for k in ("actions", "states", "task_ids"):
    digest.update(np.ascontiguousarray(arrays[k]).tobytes())
  return name, digest.hexdigest()[:16]


def write_manifest(data_dir, manifest):
  tmp = os.path.join(data_dir, MANIFEST + ".tmp")
  with open(tmp, "w") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
  os.replace(tmp, os.path.join(data_dir, MANIFEST))


def read_manifest(data_dir):
  path = os.path.join(data_dir, MANIFEST)
  if not os.path.exists(path):
    raise ValueError(f"No {MANIFEST} in {data_dir!r}: not a dataset directory "
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


def open_shard(path):
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
