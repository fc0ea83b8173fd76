"""Workflows that combine training and inference (the top library layer, below the CLIs).

- :mod:`deeph_tf.workflows.distill`: label structures with a frozen teacher (``infer``), train
  the student on them (``train``), compare student, teacher and DFT for the report;
- :mod:`deeph_tf.workflows.dtrain`: the ``dtrain`` driver: teacher labels when the input has
  a ``distillation`` section, then :func:`deeph_tf.train.trainer.train`.

``train`` and ``infer`` never import each other; whatever needs both lives here.
"""
