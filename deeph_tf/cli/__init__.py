"""Thin command-line front ends: ``dtrain``, ``dfreeze``, ``dtest``.

Each module has ``build_parser()`` and ``main(argv=None) -> int``. Parsing never imports
TensorFlow, so ``--help`` is instant; the work is delegated to one keyword-only function
of the library, imported only after the arguments are valid.
"""
