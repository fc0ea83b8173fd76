"""deeph_tf: E(3)-equivariant networks for DFT Hamiltonians in TensorFlow/Keras.

Importing the package is cheap: TensorFlow is imported only by the modules that
need it (``deeph_tf.so3`` TensorFlow ops, the model and the trainer), never by
the command-line parsers.
"""
from deeph_tf._version import __version__

__all__ = ["__version__"]
