"""Runtime setup shared by scripts and tests: XLA:CPU flags, persistent compilation cache, quiet warnings; and
`run`, the command-line apps' `absl.app.run` that prints a user's mistakes as one line."""
import os
import sys
import traceback
import warnings

# XLA:CPU hands elementwise fusions and reductions to YNNPACK by default. On this project's small tensors (a
# predictor over 3 tokens, 64 px convolutions, MJX's contact solver) XLA's own loop fusions are faster: on 2
# cores a 200 x 10 CEM replan takes 81.5 ms with them, 104.8 ms without (RESULTS.md section 4;
# `experiments/benchmark.py --xla_defaults` runs without them).
# These flags only concern the CPU backend; GPU and TPU ignore them.
CPU_XLA_FLAGS = ("--xla_cpu_experimental_ynn_fusion_type=-eltwise,-reduce",)
# One XLA host device per core (at most 8), so that batched evaluation shards its episodes over the cores
# (`mpc.evaluate`). A single device already spreads large matmuls over the cores, but the small per-episode
# matmuls of adapted layers and MJX's solver loop mostly run on one: on 2 cores, 50 adaptive episodes run
# 1.5x faster sharded over 2 devices, and nearly as fast as frozen ones (RESULTS.md section 4). Computations on one
# device (training, a single episode) are unaffected: all host devices share one thread pool.
MAX_HOST_DEVICES = 8


def host_device_flag():
  """`--xla_force_host_platform_device_count=<cores, at most MAX_HOST_DEVICES>`."""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
  return f"--xla_force_host_platform_device_count={max(1, min(cores, MAX_HOST_DEVICES))}"


def quiet_known_warnings():
  """Filters the jaxopt deprecation warnings brax triggers and absl INFO logs (orbax logs every save there).

  mujoco.mjx's "Failed to import warp" print is silenced where mjx is first imported (`adajepa_jax.envs`).
  """
  from absl import logging as absl_logging
  warnings.filterwarnings("ignore", message=".*jaxopt.*")
  warnings.filterwarnings("ignore", category=DeprecationWarning, module="brax")
  absl_logging.set_verbosity(absl_logging.WARNING)


def add_xla_flags():
  """Appends `CPU_XLA_FLAGS` and `host_device_flag()` to $XLA_FLAGS; a flag already named there is left as
  the user set it.

  XLA reads $XLA_FLAGS once, when jax first initialises its backends; returns False (and changes nothing)
  when that has already happened.
  """
  from jax._src import xla_bridge
  if xla_bridge.backends_are_initialized():
    return False
  flags = CPU_XLA_FLAGS + (host_device_flag(),)
  current = os.environ.get("XLA_FLAGS", "")
  names = {f.split("=")[0] for f in current.split()}
  extra = [f for f in flags if f.split("=")[0] not in names]
  os.environ["XLA_FLAGS"] = " ".join([current] + extra).strip()
  return True


def cpu_xla_flags_active():
  """True when every flag of `CPU_XLA_FLAGS` is in $XLA_FLAGS (as `add_xla_flags` leaves it)."""
  current = os.environ.get("XLA_FLAGS", "").split()
  return all(f in current for f in CPU_XLA_FLAGS)


def setup_runtime(cache_dir=None, xla_flags=True):
  """Quiets warnings, adds the XLA:CPU flags of `add_xla_flags` (call before the first computation) and
  enables the persistent compilation cache (default `~/.cache/adajepa_jax/jax`, or $ADAJEPA_JAX_CACHE)."""
  import jax

  quiet_known_warnings()
  if xla_flags and not add_xla_flags():
    warnings.warn("setup_runtime ran after jax initialised its backends: its XLA flags were not applied")
  cache_dir = cache_dir or os.environ.get(
      "ADAJEPA_JAX_CACHE", os.path.expanduser("~/.cache/adajepa_jax/jax"))
  os.makedirs(cache_dir, exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _usage_error(exc):
  """The innermost `errors.UsageError` in `exc`'s chain of causes and contexts, or None."""
  from adajepa_jax.errors import UsageError
  found, seen = None, set()
  while exc is not None and id(exc) not in seen:
    seen.add(id(exc))
    found = exc if isinstance(exc, UsageError) else found
    exc = exc.__cause__ or exc.__context__
  return found


def host_info() -> dict:
  """What a result's floats depend on besides code and seeds: the CPU (XLA:CPU compiles for the host's
  instruction set, so MJX contacts and training drift apart between machines), the jax version and the XLA
  flags. Recorded with data manifests, checkpoints and run summaries."""
  import platform
  import jax
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      lines = f.read().splitlines()
    model = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), cpu)
    flags = next((l.split(":", 1)[1].split() for l in lines if l.startswith("flags")), [])
    cpu = f"{model} ({', '.join(f for f in flags if f.startswith(('avx', 'fma', 'sse4')))})"
  except OSError:
    pass
  return {"cpu": cpu, "jax": jax.__version__, "backend": jax.default_backend(),
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def fail(message):
  """A user's mistake: prints `error: <message>` on stderr and exits with status 2 (what `run` does)."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def _parse_flags(argv):
  """absl's flag parsing, with a user's mistakes (a bad flag, a missing config file, an unknown config key, a
  UsageError raised while loading the config) as one line and exit status 2."""
  from absl import flags
  for arg in argv[1:]:
    if arg.startswith("--config=") and not os.path.isfile(arg[len("--config="):].split(":", 1)[0]):
      fail(f"--config: no config file {arg[len('--config='):].split(':', 1)[0]!r}")
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    usage = _usage_error(e)
    if usage is not None:
      fail(usage)
    if isinstance(e, flags.Error) and "\n" not in str(e):   # a bad flag value (multi-line: a config bug)
      fail(e)
    frames = traceback.extract_tb(e.__traceback__)
    if (isinstance(e, (AttributeError, KeyError)) and "ml_collections" in frames[-1].filename
        and not any(f.name == "get_config" for f in frames)):   # an override of a key the config lacks
      while e.args and isinstance(e.args[0], BaseException):
        e = e.args[0]
      fail("unknown config key " + " ".join(str(e.args[0] if e.args else e).split()))
    raise


def join_hosts():
  """Several hosts: with $JAX_COORDINATOR_ADDRESS set (process 0's host:port), joins the $JAX_NUM_PROCESSES
  processes as process $JAX_PROCESS_ID (`jax.distributed.initialize`); a no-op without it. Must run before
  anything initialises JAX (loading the stored config does). Every process then evaluates its share of the
  episodes (evaluate.py), collects its share of each shard's episodes (collect_data.py) or trains on its
  slice of each batch (train_world_model.py), with data parallelism on."""
  if not os.environ.get("JAX_COORDINATOR_ADDRESS"):
    return
  bad = [f"{v}={os.environ.get(v)!r}" for v in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
         if not os.environ.get(v, "").isdigit()]
  if bad:
    fail(f"JAX_COORDINATOR_ADDRESS is set, so JAX_NUM_PROCESSES (the process count) and "
               f"JAX_PROCESS_ID (this process's index) must be integers; got {', '.join(bad)}")
  import jax
  jax.distributed.initialize(num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
                             process_id=int(os.environ["JAX_PROCESS_ID"]))


def run(main, setup=True):
  """`absl.app.run(main)` for the command-line apps: a user's mistake (`errors.UsageError`, raised by the
  library for a missing checkpoint or dataset, a config mismatch, an unknown name) prints as
  `error: <message>` on stderr and exits with status 2; other exceptions keep their traceback.

  `setup`: call `setup_runtime()` first, before the flags are parsed (loading a stored config reads a
  checkpoint, which initialises JAX); an app that sets the runtime up from its flags passes False.
  """
  from absl import app
  if setup:
    setup_runtime()

  def guarded(argv):
    from adajepa_jax.errors import UsageError
    try:
      return main(argv)
    except UsageError as e:
      fail(e)

  app.run(guarded, flags_parser=_parse_flags)
