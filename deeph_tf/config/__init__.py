"""The training input: one JSON Schema drives validation, defaults, out.json and the docs.

``deeph_tf/schemas/input.schema.json`` (package data) is the single source of every key of
``dtrain INPUT.json``: its type, its default, its documentation (``description``) and a
short statement of the accepted values (``x-expected``, used in error messages).

* :func:`normalize` (:mod:`.normalize`): the DeePMD-kit ``normalize`` step. Comments (keys
  starting with ``_``) are dropped, unknown keys are reported DeePMD-style with the closest
  valid key::

      undefined key 'strat_lr' at learning_rate; did you mean start_lr?

  a section whose object forms are told apart by ``type`` (``learning_rate``: "exp",
  "reduce_on_plateau", "warmup_cosine") is checked against the form its ``type`` names
  (or the form whose ``type`` has a default); then defaults are filled and the result is
  validated; the first (most relevant) error (:mod:`.schema_errors`) names the path, the
  bad value and what was expected::

      training.training_data.batch_size: 'autox' is not valid: expected an integer >= 1,
      a list of integers, "auto" or "auto:N"

  then the rules a schema cannot state are checked (:mod:`.cross_fields`).
* :func:`load_input` / :func:`write_normalized` (:mod:`.files`): read an input file, write out.json.
* :func:`schema_doc_markdown` (:mod:`.docs`): the key reference (docs/input.md, made by
  ``tools/gen_input_docs.py``).

Layer: base (imports only the stdlib, jsonschema, :mod:`deeph_tf.conventions`,
:mod:`deeph_tf.atomic_io` and the element table :mod:`deeph_tf.elements`). No
TensorFlow nor NumPy at import, so the command-line parsers stay light.
"""
from deeph_tf.config.docs import iter_schema_keys, schema_doc_markdown
from deeph_tf.config.errors import ConfigError, PathParts, format_path
from deeph_tf.config.files import PathLike, load_input, write_normalized
from deeph_tf.config.normalize import normalize, strip_comments
from deeph_tf.config.schema import INPUT_SCHEMA_PATH, SCHEMA_DIR, load_schema

__all__ = [
    "ConfigError", "INPUT_SCHEMA_PATH", "PathLike", "PathParts", "SCHEMA_DIR", "format_path",
    "iter_schema_keys", "load_input", "load_schema", "normalize", "schema_doc_markdown", "strip_comments",
    "write_normalized",
]
