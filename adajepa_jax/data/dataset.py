"""Training windows from collected shards, with a seeded train/val split by episode.

A window starting at env step t has `history + 1` frames at env steps t, t + fs, ..., t + history * fs
(fs = frameskip) and `history` action chunks: chunk k holds the fs env actions taken between frames k and
k + 1, flattened to `A * fs`. Shards are memory-mapped; only the sampled windows are read. Opening a dataset
checks every shard against the manifest (its size, or its checksum on demand) and names the command that
re-collects a bad one.

Example:
  ds = WindowDataset('workdir/data', history=3, frameskip=5, split='train', val_fraction=0.05, seed=0)
  batch = next(ds.batches(32, seed))   # pixels uint8[32, 4, H, W, 3], proprio f32[32, 4, P],
                                       # actions f32[32, 3, A * 5]
"""
import os
from typing import Iterator, Optional, Union

import jax
import numpy as np

from adajepa_jax.data import storage

SPLITS = ("train", "val", "all")
VERIFY = ("size", "checksum")


def _rng(key_or_seed):
  """numpy Generator from an int seed or a JAX PRNG key (raw uint32 or typed)."""
  if isinstance(key_or_seed, (int, np.integer)):
    return np.random.default_rng(int(key_or_seed))
  key = key_or_seed
  if jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return np.random.default_rng(np.asarray(key, np.uint32).ravel().tolist())


def split_episodes(num_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Seeded split of episode indices -> (train i64[], val i64[]); at least one of each when possible."""
  if not 0.0 <= val_fraction < 1.0:
    raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
  perm = np.random.default_rng(seed).permutation(num_episodes)
  n_val = int(round(num_episodes * val_fraction))
  if val_fraction > 0 and num_episodes > 1:
    n_val = min(max(n_val, 1), num_episodes - 1)
  return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class WindowDataset:
  """Random training windows over the episodes of one split.

  Args:
    data_dir: directory holding `manifest.json` and the shards.
    history: number of action chunks per window (the window has `history + 1` frames).
    frameskip: env steps per chunk.
    split: 'train', 'val' or 'all'.
    val_fraction: fraction of episodes held out for 'val'.
    seed: seed of the episode split.
    verify: how each shard is checked against the manifest when opened: 'size' (cheap; shards of older
      manifests, which record no sizes, by checksum) or 'checksum' (reads every shard once).

  Raises:
    storage.ShardError: a shard is missing or differs from the manifest (the message says how to
      re-collect it).
  """

  def __init__(self, data_dir, history=3, frameskip=5, split="train", val_fraction=0.05, seed=0,
               verify="size"):
    if split not in SPLITS:
      raise ValueError(f"Unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    if verify not in VERIFY:
      raise ValueError(f"Unknown verify {verify!r}; valid choices: {', '.join(VERIFY)}")
    if int(history) < 1 or int(frameskip) < 1:
      raise ValueError(f"history and frameskip must be >= 1, got {history!r}, {frameskip!r}")
    self.manifest = storage.read_manifest(data_dir)
    self.fingerprint = self.manifest.get("fingerprint")
    self.history, self.frameskip = int(history), int(frameskip)
    self.length = int(self.manifest["length"])
    span = self.history * self.frameskip
    if span > self.length:
      raise ValueError(f"history * frameskip = {span} env steps exceeds the episode length {self.length}")
    for entry in self.manifest["shards"]:
      storage.verify_shard(data_dir, self.manifest, entry, checksum=verify == "checksum")
    self._shards = [storage.open_shard(os.path.join(data_dir, s["file"])) for s in self.manifest["shards"]]
    sizes = np.array([s["episodes"] for s in self.manifest["shards"]])
    self._offsets = np.concatenate([[0], np.cumsum(sizes)])
    train, val = split_episodes(int(self._offsets[-1]), float(val_fraction), int(seed))
    self.episodes = {"train": train, "val": val, "all": np.sort(np.concatenate([train, val]))}[split]
    self.windows_per_episode = self.length - span + 1

  def __len__(self):
    """Number of distinct windows in this split."""
    return len(self.episodes) * self.windows_per_episode

  @property
  def task_ids(self) -> np.ndarray:
    """i32[E_split] task (shape/layout) id of each episode of this split."""
    out = []
    for e in self.episodes:
      shard, i = self._locate(e)
      out.append(shard["task_ids"][i])
    return np.asarray(out, np.int32)

  def _locate(self, episode):
    s = int(np.searchsorted(self._offsets, episode, side="right") - 1)
    return self._shards[s], int(episode - self._offsets[s])

  def window(self, episode: int, start: int) -> dict[str, np.ndarray]:
    """One window of global episode `episode` starting at env step `start` (dict of numpy arrays)."""
    if not 0 <= start < self.windows_per_episode:
      raise ValueError(f"start must be in [0, {self.windows_per_episode}), got {start!r}")
    shard, i = self._locate(episode)
    span = self.history * self.frameskip
    frames = slice(start, start + span + 1, self.frameskip)
    actions = np.asarray(shard["actions"][i, start:start + span])
    return {
        "pixels": np.asarray(shard["pixels"][i, frames]),
        "proprio": np.asarray(shard["proprio"][i, frames]),
        "actions": actions.reshape(self.history, self.frameskip * actions.shape[-1]),
        "states": np.asarray(shard["states"][i, frames]),
    }

  def batches(self, batch_size: int, key_or_seed: Union[int, jax.Array], num_batches: Optional[int] = None,
              include_states: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """Yields batches of windows sampled uniformly with replacement (forever if `num_batches` is None).

    Args:
      batch_size: B.
      key_or_seed: int seed or JAX key of the sampling order.
      num_batches: optional number of batches to yield.
      include_states: also return `states f32[B, h+1, S]` (for probes and diagnostics).

    Yields:
      {'pixels': uint8[B, h+1, H, W, 3], 'proprio': f32[B, h+1, P], 'actions': f32[B, h, A * frameskip]}.
    """
    if len(self.episodes) == 0:
      raise ValueError("This split has no episodes (val_fraction too small for the dataset?)")
    rng = _rng(key_or_seed)
    count = 0
    while num_batches is None or count < num_batches:
      eps = self.episodes[rng.integers(0, len(self.episodes), batch_size)]
      starts = rng.integers(0, self.windows_per_episode, batch_size)
      items = [self.window(e, t) for e, t in zip(eps, starts)]
      keys = ("pixels", "proprio", "actions") + (("states",) if include_states else ())
      yield {k: np.stack([it[k] for it in items]) for k in keys}
      count += 1
