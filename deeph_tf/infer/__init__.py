"""Inference and evaluation. Importing this package does not import TensorFlow.

:mod:`deeph_tf.infer.metrics`
    Block-level errors of a prediction against the DFT reference (DeepH mask, raw and
    gauge-corrected MAE, breakdowns per element pair and shell pair). NumPy only.
:mod:`deeph_tf.infer.electronic`
    Physics errors from (H, S): molecular orbital energies, HOMO-LUMO gap, band
    structures on k-grids or along a ``K_PATH``, and band plots. NumPy/SciPy/matplotlib only.
"""
