"""PyTorch side (``[torch]`` extra): the BCE + λ·PWiseR loss, neural multi-task baselines and their bench.

* ``loss``: ``pwiser_loss`` and ``PWiseRLoss``.
* ``models``: the networks (SharedBottom, ESMM, MMoE, PLE).
* ``encoding``: ``FeatureEncoder`` (scikit-learn's OrdinalEncoder and StandardScaler; no PyTorch).
* ``training``: ``fit_neural`` and the fitted ``NeuralCTCVR``.
* ``bench``: the logic of ``gbdt-pwiser bench-neural`` (imports PyTorch only to train a network).

``import gbdt_pwiser`` never imports this package; import its modules explicitly.
"""
