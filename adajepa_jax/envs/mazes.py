"""Maze layouts as data: the reference maps, seeded random 8x8 mazes with a fixed split, and BFS.

A layout is a boolean wall mask `walls[r, c]` (True = wall), row 0 at the top, one 1 x 1 cell per entry.
As text it is one line per row, `#` (or `1`) for a wall and `O`, `G`, `R`, `C` (or `0`, `.`) for a free
cell (the letters mark goals/resets in the reference maps and are treated as free here).

The diverse mazes are 8x8 free-or-wall interiors inside a wall border (10 x 10 masks), generated from a
seed by `random_layout`. `diverse_layouts()` builds the fixed set of 30 used by `pointmaze_diverse`:
layout i comes from seed `DIVERSE_SEED + i` (duplicates and layouts without goals in every BFS band are
skipped, deterministically); ids `DIVERSE_TRAIN = 0..24` are the training split and
`DIVERSE_HELDOUT = 25..29` the held-out split. See third_party/pointmaze.md for provenance.

Example:
  walls = parse(MEDIUM)                       # bool[8, 8]
  d = bfs_distances(walls, (1, 1))            # int[8, 8], -1 where unreachable or wall
  train, ids = diverse_split("train")         # bool[25, 10, 10], (0, ..., 24)
"""
import collections
import functools

import numpy as np

U_MAZE = """
#####
#GOO#
###O#
#OOO#
#####
"""

MEDIUM = """
########
#OO##OO#
#OO#OOO#
##OOO###
#OO#OOO#
#O#OO#O#
#OOO#OG#
########
"""

LARGE = """
############
#OOOO#OOOOO#
#O##O#O#O#O#
#OOOOOO#OOO#
#O####O###O#
#OO#O#OOOOO#
##O#O#O#O###
#OO#OOO#OGO#
############
"""

REFERENCE = {"umaze": U_MAZE, "medium": MEDIUM, "large": LARGE}

DIVERSE_SIZE = 8           # interior cells per side
DIVERSE_COUNT = 30
DIVERSE_TRAIN = tuple(range(25))
DIVERSE_HELDOUT = tuple(range(25, 30))
DIVERSE_SEED = 20_240_601  # master seed of the fixed set (documented, never change it)
DIVERSE_WALL_FRACTION = (0.25, 0.40)
BANDS = {"near": (3, 5), "mid": (6, 9), "far": (10, 14)}
SPLITS = ("train", "test", "all")

_WALL_CHARS = "#1"
_FREE_CHARS = "OGRC0."


def parse(layout):
  """Parses a layout string into a wall mask.

  Args:
    layout: rows separated by newlines (blank lines and surrounding spaces are ignored).

  Returns:
    bool[R, C] wall mask (True = wall).

  Raises:
    ValueError: on unknown characters, ragged rows, or an empty layout.
  """
  rows = [line.strip() for line in str(layout).strip().splitlines() if line.strip()]
  if not rows:
    raise ValueError("Empty maze layout; expected rows of '#' (wall) and 'O' (free) characters")
  if len({len(r) for r in rows}) != 1:
    raise ValueError(f"Maze rows must all have the same length, got lengths {[len(r) for r in rows]}")
  bad = sorted({ch for r in rows for ch in r} - set(_WALL_CHARS + _FREE_CHARS))
  if bad:
    raise ValueError(f"Unknown maze characters {bad}; valid: walls {list(_WALL_CHARS)}, "
                     f"free {list(_FREE_CHARS)}")
  return np.array([[ch in _WALL_CHARS for ch in r] for r in rows], dtype=bool)


def to_string(walls):
  """Wall mask bool[R, C] -> layout string ('#' walls, 'O' free)."""
  return "\n".join("".join("#" if w else "O" for w in row) for row in np.asarray(walls))


def pad(walls, shape):
  """Pads a wall mask with walls (bottom/right) to `shape` = (R, C). Raises ValueError if it is larger."""
  walls = np.asarray(walls, bool)
  if walls.shape[0] > shape[0] or walls.shape[1] > shape[1]:
    raise ValueError(f"Layout of shape {walls.shape} does not fit the grid {tuple(shape)}")
  out = np.ones(shape, bool)
  out[:walls.shape[0], :walls.shape[1]] = walls
  return out


def bfs_distances(walls, start):
  """Shortest-path distances (4-connected moves between free cells) from `start`.

  Args:
    walls: bool[R, C] wall mask.
    start: (row, col) of a free cell.

  Returns:
    int32[R, C]: steps from `start`; -1 for walls and unreachable cells.
  """
  walls = np.asarray(walls, bool)
  dist = np.full(walls.shape, -1, np.int32)
  if walls[start]:
    return dist
  dist[start] = 0
  queue = collections.deque([tuple(start)])
  while queue:
    r, c = queue.popleft()
    for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
      nr, nc = r + dr, c + dc
      if 0 <= nr < walls.shape[0] and 0 <= nc < walls.shape[1] and not walls[nr, nc] and dist[nr, nc] < 0:
        dist[nr, nc] = dist[r, c] + 1
        queue.append((nr, nc))
  return dist


def all_pairs_distances(walls):
  """BFS distances between all cells (flattened row-major).

  Returns:
    int32[R*C, R*C]: `d[i, j]` steps from cell i to cell j; -1 if either is a wall or j is unreachable.
  """
  walls = np.asarray(walls, bool)
  n = walls.size
  out = np.full((n, n), -1, np.int32)
  for i in np.flatnonzero(~walls.ravel()):
    out[i] = bfs_distances(walls, np.unravel_index(i, walls.shape)).ravel()
  return out


def is_connected(walls):
  """True if the free cells form one 4-connected component (and there is at least one)."""
  walls = np.asarray(walls, bool)
  free = np.argwhere(~walls)
  if len(free) == 0:
    return False
  return bool(np.all(bfs_distances(walls, tuple(free[0]))[~walls] >= 0))


def random_layout(seed, size=DIVERSE_SIZE, wall_fraction=DIVERSE_WALL_FRACTION):
  """A random connected maze: a `size` x `size` interior inside a wall border.

  Interior cells are visited in a seeded random order; each becomes a wall if the free cells stay connected,
  until the wall fraction (drawn uniformly from `wall_fraction`) is reached. Connectivity holds by
  construction.

  Args:
    seed: int seed (numpy Generator).
    size: interior cells per side.
    wall_fraction: (low, high) range of the interior wall fraction.

  Returns:
    bool[size + 2, size + 2] wall mask.
  """
  rng = np.random.default_rng(seed)
  walls = np.ones((size + 2, size + 2), bool)
  walls[1:-1, 1:-1] = False
  target = int(round(rng.uniform(*wall_fraction) * size * size))
  placed = 0
  for idx in rng.permutation(size * size):
    if placed >= target:
      break
    r, c = 1 + idx // size, 1 + idx % size
    walls[r, c] = True
    if is_connected(walls):
      placed += 1
    else:
      walls[r, c] = False
  return walls


def has_band(walls, band, distances=None):
  """True if some pair of free cells is at BFS distance within the inclusive `band` = (lo, hi)."""
  d = all_pairs_distances(walls) if distances is None else distances
  return bool(np.any((d >= band[0]) & (d <= band[1])))


@functools.lru_cache(maxsize=None)
def _diverse_cached():
  layouts, seen, seed = [], set(), DIVERSE_SEED
  while len(layouts) < DIVERSE_COUNT:
    walls = random_layout(seed)
    seed += 1
    key = walls.tobytes()
    if key in seen:
      continue
    dist = all_pairs_distances(walls)
    if not all(has_band(walls, b, dist) for b in BANDS.values()):
      continue
    seen.add(key)
    layouts.append(walls)
  out = np.stack(layouts)
  out.setflags(write=False)
  return out


def diverse_layouts():
  """The fixed set of 30 diverse mazes, bool[30, 10, 10] (read-only); ids 0-24 train, 25-29 held out."""
  return _diverse_cached()


def diverse_split(split):
  """Wall masks of a split of the diverse mazes.

  Args:
    split: 'train' (ids 0-24), 'test' (held out, ids 25-29) or 'all'.

  Returns:
    (bool[n, 10, 10] masks, tuple of their ids).
  """
  ids = {"train": DIVERSE_TRAIN, "test": DIVERSE_HELDOUT, "all": DIVERSE_TRAIN + DIVERSE_HELDOUT}
  if split not in ids:
    raise ValueError(f"Unknown maze split {split!r}; valid splits: {', '.join(SPLITS)}")
  return diverse_layouts()[list(ids[split])], ids[split]


def band(name_or_range):
  """Resolves a BFS goal band: 'near' (3-5), 'mid' (6-9), 'far' (10-14) or an explicit (lo, hi)."""
  if isinstance(name_or_range, str):
    if name_or_range not in BANDS:
      raise ValueError(f"Unknown goal band {name_or_range!r}; valid bands: {', '.join(BANDS)} "
                       f"or a (low, high) pair")
    return BANDS[name_or_range]
  lo, hi = (int(v) for v in name_or_range)
  if not 1 <= lo <= hi:
    raise ValueError(f"Goal band must satisfy 1 <= low <= high, got {(lo, hi)}")
  return lo, hi
