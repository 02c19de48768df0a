"""Gallery: one PNG grid of every task under every shift that applies to it.

Rows are tasks, columns are conditions (`adajepa_jax.envs.shifts.names()`); a cell shows what the world
model sees: the task's observation after the condition's visual shift, task transform (colours) and env
kwargs (shape set, layout set). Dynamics shifts look like `clean` by design (they change physics only).

  python experiments/gallery.py --workdir=/tmp/gallery          # -> /tmp/gallery/gallery.png
  python experiments/gallery.py --workdir=/tmp/g --tasks=pusht,pointmaze_medium --shifts=clean,blur,dark
"""
import os

from absl import flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Output folder; the grid is written to <workdir>/gallery.png.")
flags.DEFINE_list("tasks", [], "Task names (default: every registered task).")
flags.DEFINE_list("shifts", [], "Condition names (default: every registered condition).")
flags.DEFINE_integer("image_size", 64, "Observation size in pixels.")
flags.DEFINE_integer("seed", 0, "Seed of the sampled scenes (the same scene across a row's columns).")
flags.mark_flag_as_required("workdir")


def display_state(env, task, key):
  """A representative full state to draw: the maze ball at its start; push agent/block off the anchor."""
  import jax
  import jax.numpy as jnp

  if hasattr(task, "walls"):
    return jnp.concatenate([task.start, jnp.zeros(2)])
  from adajepa_jax.envs import push
  jitter = jax.random.uniform(key, (2,), minval=-0.05, maxval=0.05) * push.ARENA
  block = jnp.array([0.32, 0.62]) * push.ARENA + jitter
  agent = jnp.array([0.72, 0.28]) * push.ARENA
  return jnp.concatenate([agent, block, jnp.array([0.5]), jnp.zeros(2)])


def make_gallery(task_names, shift_names, image_size, seed):
  """Renders the grid.

  Returns:
    (uint8[T, C, H, W, 3] images, bool[T, C] applicable) for T tasks and C conditions.
  """
  import jax
  import numpy as np
  from tqdm import tqdm

  from adajepa_jax import envs
  from adajepa_jax.envs import shifts

  key = jax.random.key(seed)
  images = np.zeros((len(task_names), len(shift_names), image_size, image_size, 3), np.uint8)
  applicable = np.zeros((len(task_names), len(shift_names)), bool)
  cells = [(i, j) for i in range(len(task_names)) for j in range(len(shift_names))]
  renderers = {}    # one env and one compiled renderer per (task, env kwargs); shifts applied around it
  for i, j in tqdm(cells, desc="gallery"):
    cond = shifts.get(shift_names[j])
    if not cond.applies_to(task_names[i]):
      continue
    env_key = (task_names[i], tuple(sorted((k, repr(v)) for k, v in cond.env_kwargs.items())))
    if env_key not in renderers:
      env = envs.make(task_names[i], **{"image_size": image_size, **cond.env_kwargs})
      renderers[env_key] = (env, jax.jit(env.sample_task), jax.jit(env.render))
    env, sample, render = renderers[env_key]
    k_task, k_state, k_vis = jax.random.split(jax.random.fold_in(key, i), 3)
    task = cond.apply_task(sample(k_task))
    frame = render(display_state(env, task, k_state), task)
    images[i, j] = np.asarray(cond.apply_pixels(frame, k_vis))
    applicable[i, j] = True
  return images, applicable


def save_grid(path, images, applicable, task_names, shift_names):
  """Writes the grid as a PNG with task names on rows and condition names on columns."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  rows, cols = applicable.shape
  fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols + 1.0, 1.3 * rows + 0.3), squeeze=False)
  for i in range(rows):
    for j in range(cols):
      ax = axes[i, j]
      ax.set_xticks([])
      ax.set_yticks([])
      if applicable[i, j]:
        ax.imshow(images[i, j], interpolation="nearest")
      else:
        ax.set_facecolor((0.96, 0.96, 0.96))
        ax.text(0.5, 0.5, "n/a", ha="center", va="center", color="0.6", fontsize=7, transform=ax.transAxes)
        for s in ax.spines.values():
          s.set_visible(False)
      if i == 0:
        ax.set_title(shift_names[j], fontsize=7)
      if j == 0:
        ax.set_ylabel(task_names[i], fontsize=7)
  fig.tight_layout(pad=0.3)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv):
  del argv
  from adajepa_jax import envs
  from adajepa_jax.envs import shifts
  from adajepa_jax.errors import UsageError

  task_names = FLAGS.tasks or envs.names()
  for t in task_names:
    if t not in envs.names():
      raise UsageError(f"Unknown task {t!r}; valid tasks: {', '.join(envs.names())}")
  shift_names = FLAGS.shifts or shifts.names()
  for s in shift_names:
    shifts.get(s)   # UsageError naming the valid shifts
  images, applicable = make_gallery(task_names, shift_names, FLAGS.image_size, FLAGS.seed)
  os.makedirs(FLAGS.workdir, exist_ok=True)
  path = os.path.join(FLAGS.workdir, "gallery.png")
  save_grid(path, images, applicable, task_names, shift_names)
  print(f"wrote {path} ({len(task_names)} tasks x {len(shift_names)} conditions)")


if __name__ == "__main__":
  utils.run(main)
