"""PyTorch side (``[torch]`` extra): the BCE + λ·PWiseR loss, neural multi-task baselines and their bench.

``import gbdt_pwiser`` never imports this package; import its modules explicitly
(``gbdt_pwiser.neural.loss``, ``gbdt_pwiser.neural.models``).
"""
