"""Evaluation outputs: success statistics, tables, plots and GIFs."""
from adajepa_jax.eval.metrics import seed_summary, success_curve
from adajepa_jax.eval.plots import plot_maze_trajectories, plot_success_curves, write_episode_gif
from adajepa_jax.eval.report import write_table
