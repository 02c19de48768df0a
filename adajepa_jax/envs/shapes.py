"""Block shapes for PushT / PushObj: each shape is a union of axis-aligned boxes in its own body frame.

A shape is data, not a code path: `shape_arrays` pads any shape to a fixed number of boxes so one compiled
env runs a vmapped batch of episodes with different shapes. Geometry is given in the reference units of the
512 x 512 PushT canvas (see `third_party/pusht_pushobj.md`); the env scales it to its own world units.

Example:
  spec = shapes.get('T')                                    # built-in
  arrow = shapes.from_boxes([(0, 0, 120, 40), (40, 0, 40, 100)], name='arrow')   # (cx, cy, w, h) boxes
  arrays = shapes.shape_arrays(spec, max_boxes=3, scale=0.01)
"""
import dataclasses
from typing import Optional, Sequence

import numpy as np

TRAIN_SHAPES = ("T", "L", "Z", "+")
TEST_SHAPES = ("I", "smallT", "square")
# Mass of the reference T (unit 30); other shapes get the same density (mass proportional to area).
_T_MASS = 1.0
_T_AREA = 120.0 * 30.0 + 30.0 * 90.0
# Padding rows are tiny boxes hidden inside the first real box: they never touch anything and are not drawn.
_PAD_HALF = 1e-3


@dataclasses.dataclass(frozen=True)
class ShapeSpec:
  """A block shape in reference units (host-side, numpy).

  Attributes:
    name: display name.
    boxes: f64[n, 4] rows (cx, cy, width, height) in the shape frame (y up).
    com: f64[2] centre of mass in the shape frame (the pose origin of the block).
    mass: total mass.
  """
  name: str
  boxes: np.ndarray
  com: np.ndarray
  mass: float

  @property
  def num_boxes(self):
    return int(self.boxes.shape[0])

  @property
  def area(self):
    """Total area (boxes of one shape are assumed not to overlap)."""
    return float(np.sum(self.boxes[:, 2] * self.boxes[:, 3]))

  def inertia(self):
    """Moment of inertia about the centre of mass (z axis), mass spread uniformly over the boxes."""
    areas = self.boxes[:, 2] * self.boxes[:, 3]
    masses = self.mass * areas / areas.sum()
    own = masses * (self.boxes[:, 2] ** 2 + self.boxes[:, 3] ** 2) / 12.0
    offset = masses * np.sum((self.boxes[:, :2] - self.com) ** 2, axis=-1)
    return float(np.sum(own + offset))


def from_boxes(boxes, name="custom", com=None, mass=None, max_boxes: Optional[int] = None):
  """Builds a shape from a list of boxes, validating it.

  Args:
    boxes: sequence of (cx, cy, width, height) in reference units (the PushT canvas is 512 wide; the
      built-in shapes are 80-160 units across). Boxes of one shape should not overlap.
    name: display name.
    com: optional (x, y) centre of mass; default: area-weighted centroid of the boxes.
    mass: optional mass; default: area times the density of the reference T (mass 1).
    max_boxes: optional upper bound on the number of boxes.

  Returns:
    A `ShapeSpec`.

  Raises:
    ValueError: naming the malformed box and the expected format.
  """
  fmt = "a non-empty list of (cx, cy, width, height) boxes with finite numbers and width, height > 0"
  if isinstance(boxes, (str, bytes)) or not isinstance(boxes, (Sequence, np.ndarray)) or len(boxes) == 0:
    raise ValueError(f"Malformed shape {name!r}: got {boxes!r}; expected {fmt}.")
  rows = []
  for i, box in enumerate(boxes):
    try:
      row = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError):
      raise ValueError(f"Malformed box {i} of shape {name!r}: {box!r}; expected {fmt}.") from None
    if row.shape != (4,) or not np.all(np.isfinite(row)) or row[2] <= 0 or row[3] <= 0:
      raise ValueError(f"Malformed box {i} of shape {name!r}: {box!r}; expected {fmt}.")
    if np.max(np.abs(row[:2])) + 0.5 * max(row[2], row[3]) > 256.0:
      raise ValueError(f"Box {i} of shape {name!r} reaches beyond 256 units from the shape origin: {box!r}; "
                       "shapes must fit well inside the 512-unit arena.")
    rows.append(row)
  if max_boxes is not None and len(rows) > max_boxes:
    raise ValueError(f"Shape {name!r} has {len(rows)} boxes; at most max_boxes={max_boxes} are allowed.")
  arr = np.stack(rows)
  areas = arr[:, 2] * arr[:, 3]
  if com is None:
    com = (arr[:, :2] * areas[:, None]).sum(0) / areas.sum()
  com = np.asarray(com, dtype=np.float64)
  if com.shape != (2,) or not np.all(np.isfinite(com)):
    raise ValueError(f"Malformed centre of mass {com!r} for shape {name!r}; expected finite (x, y).")
  if mass is None:
    mass = _T_MASS * areas.sum() / _T_AREA
  if not (np.isfinite(mass) and mass > 0):
    raise ValueError(f"Malformed mass {mass!r} for shape {name!r}; expected a finite number > 0.")
  return ShapeSpec(name=name, boxes=arr, com=com, mass=float(mass))


# Built-in shapes (reference units, y up). T follows gym-pusht: the centre of mass is the mean of the two
# box centroids (not the area-weighted one).
_BUILTIN = {
    "T": dict(boxes=[(0, 105, 120, 30), (0, 45, 30, 90)], com=(0.0, 75.0)),
    "L": dict(boxes=[(40, 20, 80, 40), (20, 80, 40, 80)]),
    "Z": dict(boxes=[(40, 60, 80, 40), (80, 20, 80, 40)]),
    "+": dict(boxes=[(0, 0, 120, 40), (0, 40, 40, 40), (0, -40, 40, 40)]),
    "I": dict(boxes=[(0, 0, 40, 160)]),
    "smallT": dict(boxes=[(0, 60, 120, 40), (0, 20, 40, 40)]),
    "square": dict(boxes=[(0, 0, 80, 80)]),
}
_REGISTRY = {name: from_boxes(name=name, **kw) for name, kw in _BUILTIN.items()}


def names():
  """Names of all registered shapes (built-ins first, then user registrations)."""
  return tuple(_REGISTRY)


def get(name):
  """The registered `ShapeSpec` called `name`; ValueError naming the valid shapes otherwise."""
  if not isinstance(name, str) or name not in _REGISTRY:
    raise ValueError(f"Unknown shape {name!r}; valid shapes: {', '.join(names())} "
                     "(or a list of (cx, cy, width, height) boxes)")
  return _REGISTRY[name]


def register(name, boxes, com=None, mass=None):
  """Registers a user shape under `name` (so `envs.make('pushobj', shapes=(name, ...))` works)."""
  if not isinstance(name, str) or not name:
    raise ValueError(f"Shape name must be a non-empty string, got {name!r}")
  spec = from_boxes(boxes, name=name, com=com, mass=mass)
  _REGISTRY[name] = spec
  return spec


def resolve(shape):
  """A shape name, a `ShapeSpec` or a list of boxes -> `ShapeSpec` (ValueError if none of these)."""
  if isinstance(shape, ShapeSpec):
    return shape
  if isinstance(shape, str):
    return get(shape)
  return from_boxes(shape)


def shape_arrays(spec, max_boxes, scale):
  """Pads a shape to `max_boxes` boxes and converts it to world units.

  Args:
    spec: a `ShapeSpec`.
    max_boxes: K, the fixed number of box rows (>= spec.num_boxes).
    scale: world units per reference unit.

  Returns:
    dict of numpy arrays: boxes f32[K, 4] as (cx, cy, half_w, half_h) relative to the centre of mass,
    mask bool[K], mass f32[], inertia f32[] (about the centre of mass, world units), area f32[],
    symmetry i32[] (rotational symmetry order, see `symmetry_order`).
  """
  n = spec.num_boxes
  if n > max_boxes:
    raise ValueError(f"Shape {spec.name!r} has {n} boxes; this env allows max_boxes={max_boxes}.")
  real = np.concatenate([(spec.boxes[:, :2] - spec.com) * scale, spec.boxes[:, 2:] * 0.5 * scale], axis=1)
  pad = np.tile(np.concatenate([real[0, :2], [_PAD_HALF, _PAD_HALF]])[None], (max_boxes - n, 1))
  return dict(
      boxes=np.concatenate([real, pad]).astype(np.float32),
      mask=np.arange(max_boxes) < n,
      mass=np.float32(spec.mass),
      inertia=np.float32(spec.inertia() * scale ** 2),
      area=np.float32(spec.area * scale ** 2),
      symmetry=np.int32(symmetry_order(spec)),
  )


def symmetry_order(spec, samples=64):
  """The rotational symmetry order k of a shape about its centre of mass: 4, 2 or 1.

  A rotation by 2 pi / k maps the shape onto itself (square and + are 4-fold, I and Z 2-fold, T and L
  1-fold). Checked on a grid of points: occupancy must be unchanged under the rotation.
  """
  r = max_radius(spec) * 1.05
  g = np.linspace(-r, r, samples)
  pts = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
  c, h = spec.boxes[:, :2] - spec.com, spec.boxes[:, 2:] * 0.5

  def inside(p):   # a point is occupied when it is well inside (or well outside) every box edge alike
    d = np.max(np.abs(p[:, None] - c[None]) - h[None], axis=-1)   # per-box box SDF (>0 outside)
    return np.min(d, axis=-1)

  base = inside(pts)
  clear = np.abs(base) > 0.02 * r      # ignore points on the boundary (grid aliasing)
  for k in (4, 2):
    a = 2 * np.pi / k
    rot = pts @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    if np.all((inside(rot)[clear] < 0) == (base[clear] < 0)):
      return k
  return 1


def max_radius(spec):
  """Largest distance from the centre of mass to a box corner (reference units)."""
  c = spec.boxes[:, :2] - spec.com
  h = spec.boxes[:, 2:] * 0.5
  return float(np.max(np.linalg.norm(np.abs(c) + h, axis=-1)))

