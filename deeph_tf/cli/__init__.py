"""Thin command-line front ends: ``dtrain``, ``dfreeze``, ``dtest``, ``dgraph``, ``dinspect``, ``dreport``.

Each module has ``build_parser()`` and ``main(argv=None) -> int``. Parsing never imports
TensorFlow, so ``--help`` is instant; the work is delegated to the library, imported only
after the arguments are valid.

Every ``main`` runs its work through :func:`deeph_tf.cli._common.run_command`, so all
commands end the same way. A fatal error is logged once (stderr, and the ``-l`` log file)
and the exit code says what kind it was:

- 0: success;
- 1: a runtime failure: the training diverged (NaN/Inf loss), a multi-worker launch that
  cannot start, or anything unexpected (its traceback is logged at ``-v DEBUG``);
- 2: bad input: an invalid input file (unknown key, wrong type), data in a wrong format,
  a checkpoint or model that cannot be found or read, a missing file or folder, an output
  that exists and may not be replaced. (argparse also exits with 2 on bad flags.)
"""
