"""Default hyper-parameters of the PWiseR objective.

The evidence for these values (a sweep on the simulator) is in docs/evidence.md,
section "Choosing λ and the margins".
"""

DEFAULT_LAM: float = 1.0
DEFAULT_MARGIN_CLICK_ONLY: float = 0.02
DEFAULT_MARGIN_NO_CLICK: float = 0.02
HESSIAN_FLOOR: float = 1e-16
