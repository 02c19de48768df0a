"""Figures: success-vs-replan curves, maze trajectories, heatmaps, paired gains with their intervals, and GIFs
of episodes beside their goal."""
from typing import Mapping, Sequence, Union

import imageio.v2 as imageio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402


def plot_success_curves(curves: Mapping[str, Union[Sequence[float], np.ndarray]], path: str, title: str = "",
                        budget_label: str = "replans", ylabel: str = "success reached (%)") -> None:
  """curves: {label: f[R] percent reached by each replan (or any percentage per step 1..R)} -> PNG at `path`."""
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for label, curve in curves.items():
    ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", ms=3, label=label)
  ax.set_xlabel(budget_label)
  ax.set_ylabel(ylabel)
  ax.set_ylim(0, 100)
  ax.grid(alpha=0.3)
  ax.set_title(title)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_maze_trajectories(wall_mask: npt.ArrayLike, trajectories: Sequence[npt.ArrayLike],
                           goals: Sequence[Union[Sequence[float], np.ndarray]], path: str, cell: float = 1.0,
                           title: str = "") -> None:
  """Top-down maze with ball trajectories.

  Args:
    wall_mask: bool[R, C] walls (row 0 at the top).
    trajectories: list of f[T, 2] ball xy (world frame, origin at the maze's bottom-left corner).
    goals: list of f[2] goal xy.
  """
  rows, cols = np.asarray(wall_mask).shape
  fig, ax = plt.subplots(figsize=(4, 4 * rows / cols))
  ax.imshow(np.asarray(wall_mask), cmap="Greys", extent=(0, cols * cell, 0, rows * cell), vmin=0, vmax=1.5)
  for i, (traj, goal) in enumerate(zip(trajectories, goals)):
    traj = np.asarray(traj)
    colour = plt.cm.tab10(i % 10)
    ax.plot(traj[:, 0], traj[:, 1], "-", color=colour, lw=1.5)
    ax.plot(traj[0, 0], traj[0, 1], "o", color=colour, ms=5)
    ax.plot(goal[0], goal[1], "*", color=colour, ms=10, mec="k")
  ax.set_title(title)
  ax.set_xticks([])
  ax.set_yticks([])
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_episode_gif(frames: npt.ArrayLike, goal: npt.ArrayLike, path: str, fps: float = 4) -> None:
  """frames: uint8[T, H, W, 3] observed frames; goal: uint8[H, W, 3]. Each GIF frame shows frame | goal."""
  frames = np.asarray(frames)
  goal = np.broadcast_to(np.asarray(goal), frames.shape)
  sep = np.full(frames.shape[:2] + (2, 3), 255, np.uint8)
  imageio.mimsave(path, list(np.concatenate([frames, sep, goal], axis=2)), duration=1.0 / fps, loop=0)


def plot_heatmaps(grids: Mapping[str, npt.ArrayLike], row_labels: Sequence[str], col_labels: Sequence[str],
                  path: str, xlabel: str = "", ylabel: str = "", title: str = "", signed: bool = False) -> None:
  """grids: {panel title: f[R, C]} -> one PNG with a heatmap per panel, each cell printed.

  signed: a diverging colour map centred on 0 (differences); else 0-100 (success %)."""
  n = len(grids)
  width, height = n * (0.6 * len(col_labels) + 2.2), 0.55 * len(row_labels) + 1.8
  fig, axes = plt.subplots(1, n, figsize=(width, height), squeeze=False)
  for ax, (name, grid) in zip(axes[0], grids.items()):
    grid = np.asarray(grid, float)
    if signed:
      bound = max(1.0, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0)
      ax.imshow(grid, cmap="RdBu", vmin=-bound, vmax=bound, origin="lower")
    else:
      ax.imshow(grid, cmap="viridis", vmin=0, vmax=100, origin="lower")
    for (i, j), v in np.ndenumerate(grid):
      ax.text(j, i, "" if np.isnan(v) else f"{v:+.0f}" if signed else f"{v:.0f}", ha="center", va="center")
    ax.set_xticks(range(len(col_labels)), col_labels)
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(name, fontsize=9)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def plot_paired_gains(gains: Mapping[str, Sequence[tuple[str, float, float, float]]], path: str,
                      title: str = "") -> None:
  """gains: {panel title: [(label, mean, low, high)]} paired differences (points) with their intervals -> one
  PNG, a panel per entry, a point with its interval per label and a line at 0."""
  n = len(gains)
  fig, axes = plt.subplots(1, n, figsize=(n * 3.2 + 0.5, 3.2), squeeze=False)
  for ax, (name, items) in zip(axes[0], gains.items()):
    x = np.arange(len(items))
    mean = np.array([m for _, m, _, _ in items])
    err = np.array([[m - lo, hi - m] for _, m, lo, hi in items]).T
    ax.errorbar(x, mean, yerr=err, fmt="o", capsize=4)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, [label for label, _, _, _ in items])
    ax.set_ylabel("adaptive - frozen (points)")
    ax.set_title(name, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
