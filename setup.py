"""adajepa_jax: a JAX functional research framework for adaptive latent world models (AdaJEPA)."""
from setuptools import find_packages, setup

setup(
    name="adajepa_jax",
    version="0.1.0",
    description="AdaJEPA in JAX: MJX tasks, JEPA world models, latent MPC with test-time adaptation.",
    python_requires=">=3.11",
    packages=find_packages(include=["adajepa_jax", "adajepa_jax.*"]),
    install_requires=[
        "jax>=0.10.2,<0.11",
        "jaxlib>=0.10.2,<0.11",
        "flax>=0.12.8,<0.13",
        "optax>=0.2.8,<0.3",
        "orbax-checkpoint>=0.12.8,<0.13",
        "mujoco>=4.0,<4.1",
        "mujoco-mjx>=3.17,<3.18",
        "brax>=0.14.2,<0.15",
        "chex>=0.1.92,<0.2",
        "absl-py>=2.1",
        "ml-collections>=1.1,<1.2",
        "dm-pix>=0.4.5,<0.5",
        "matplotlib>=3.9",
        "imageio>=2.37",
        "tqdm>=4.66",
        "tensorboardX>=2.6",
        "numpy>=2.0",
    ],
    extras_require={"test": ["pytest>=8", "pytest-xdist>=3.6"]},
)
