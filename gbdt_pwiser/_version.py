"""The version of gbdt-pwiser, in one place: setuptools reads it (``pyproject.toml``, dynamic version)
and ``gbdt_pwiser.__version__`` / ``gbdt-pwiser --version`` show it."""

__version__ = "0.1.0"
