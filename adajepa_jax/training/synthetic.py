"""A tiny synthetic window dataset with the loader's batch structure, for tests and smoke runs.

A square "agent" moves on a plain background; each model step applies the mean of its `frameskip` 2-d
actions. It has learnable, action-dependent dynamics, so a world model's loss must fall on it.
"""
from typing import Iterator, Optional

import numpy as np


class SyntheticWindows:
  """Drop-in for `data.dataset.WindowDataset` in tests.

  Args:
    num_windows: windows in the pool.
    history: h (windows have h+1 frames).
    image_size: H = W.
    frameskip: env actions per model step (actions are f32[2 * frameskip]).
    seed: pool seed.
  """

  def __init__(self, num_windows=64, history=3, image_size=32, frameskip=5, seed=0):
    rng = np.random.default_rng(seed)
    self.history, self.image_size, self.frameskip = history, image_size, frameskip
    self.fingerprint = f"synthetic-{num_windows}-{history}-{image_size}-{frameskip}-{seed}"
    a = rng.uniform(-1, 1, (num_windows, history, frameskip, 2)).astype(np.float32)
    pos = np.zeros((num_windows, history + 1, 2), np.float32)
    pos[:, 0] = rng.uniform(0.2, 0.8, (num_windows, 2))
    for k in range(history):
      pos[:, k + 1] = np.clip(pos[:, k] + 0.15 * a[:, k].mean(1), 0.1, 0.9)
    grid = (np.arange(image_size) + 0.5) / image_size
    dx = np.abs(grid[None, None, None, :] - pos[..., 0, None, None])
    dy = np.abs(grid[None, None, :, None] - pos[..., 1, None, None])
    agent = (dx < 0.12) & (dy < 0.12)
    pixels = np.full(agent.shape + (3,), 230, np.uint8)
    pixels[agent] = (40, 60, 220)
    self.pixels = pixels
    self.proprio = np.concatenate([pos, np.zeros_like(pos)], -1)
    self.actions = a.reshape(num_windows, history, frameskip * 2)
    self.states = np.concatenate([pos, np.zeros(pos.shape[:2] + (3,), np.float32)], -1)

  def __len__(self):
    return self.pixels.shape[0]

  def batches(self, batch_size: int, seed: int, num_batches: Optional[int] = None,
              include_states: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """Yields {'pixels' uint8[B, h+1, H, W, 3], 'proprio' f32[B, h+1, 4], 'actions' f32[B, h, 2 * frameskip]}
    (+ 'states' f32[B, h+1, 5]: agent xy, a fixed "block" pose) in an order fixed by `seed`, one epoch
    (without replacement) or `num_batches` batches."""
    rng = np.random.default_rng(seed)
    count = 0
    while num_batches is None or count < num_batches:
      order = rng.permutation(len(self))
      for i in range(0, len(order) - batch_size + 1, batch_size):
        idx = order[i:i + batch_size]
        b = {"pixels": self.pixels[idx], "proprio": self.proprio[idx], "actions": self.actions[idx]}
        if include_states:
          b["states"] = self.states[idx]
        yield b
        count += 1
        if num_batches is not None and count >= num_batches:
          return
      if num_batches is None:
        return
