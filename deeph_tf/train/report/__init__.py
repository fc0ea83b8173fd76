"""The training report: ``report.md`` with PNG figures, from a run's training record.

At the end of a run ``dtrain`` writes the training record ``training_record.json`` into the
run folder and then the report; ``dreport FOLDER`` rebuilds it on demand. No TensorFlow here:
NumPy, and matplotlib (bare ``Figure``, :mod:`deeph_tf.plotting`) for the figures.

:mod:`~deeph_tf.train.report.record`
    The record's format (documented there), validation, writing and reading.
:mod:`~deeph_tf.train.report.epochs`
    The per-epoch table against lcurve.out.
:mod:`~deeph_tf.train.report.sections`
    Markdown cells and tables, the configuration and metrics-vs-targets sections.
:mod:`~deeph_tf.train.report.figures`
    The learning-curve and parity figures (parity.npz's format documented there).
:mod:`~deeph_tf.train.report.markdown`
    :func:`write_report`, the document.
:mod:`~deeph_tf.train.report.folder`
    ``dreport``: :func:`report_from_folder` and :func:`partial_record`.
"""
from deeph_tf.train.report.epochs import EpochTable, epoch_rows
from deeph_tf.train.report.folder import partial_record, report_from_folder
from deeph_tf.train.report.markdown import write_report
from deeph_tf.train.report.record import (RECORD_FORMAT, RECORD_NAME, REPORT_NAME, ReportError,
                                          read_training_record, validate_training_record, write_training_record)

__all__ = [
    "RECORD_NAME",
    "REPORT_NAME",
    "RECORD_FORMAT",
    "ReportError",
    "EpochTable",
    "validate_training_record",
    "write_training_record",
    "read_training_record",
    "epoch_rows",
    "write_report",
    "report_from_folder",
    "partial_record",
]
