"""Saved models: training checkpoints (HDF5), the frozen SavedModel format, one loader.

This layer sits above :mod:`deeph_tf.model` and below :mod:`deeph_tf.train` and
:mod:`deeph_tf.infer`; both use it, neither imports the other.
"""
