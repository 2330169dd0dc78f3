"""Ad logs: the ``AdLog`` type, loaders of the public logs and a simulator."""

from ._datasets import *  # noqa: F401,F403
from ._datasets import __all__  # noqa: F401
