"""The ``dtrain`` driver: teacher labels first when the input has a ``distillation`` section, then train.

:func:`run_dtrain` is what ``dtrain`` calls; :func:`deeph_tf.train.trainer.train` itself knows
nothing about teachers: it takes the extra training-only systems, the share of batches from
the input's own systems and a callable for the report's comparisons as arguments.
"""
from __future__ import annotations

import functools
import logging
from typing import Optional

from deeph_tf.train.distributed import Workers
from deeph_tf.train.trainer import TrainResult, train
from deeph_tf.workflows.distill import cached_labels, distillation_comparisons, label_with_teacher

logger = logging.getLogger(__name__)


def run_dtrain(config: dict, *, restart: Optional[str] = None, init_model: Optional[str] = None,
               init_frz_model: Optional[str] = None, output: Optional[str] = "out.json",
               workers: Optional[Workers] = None, finetune: bool = False) -> TrainResult:
    """``dtrain`` on a normalized input (see :func:`deeph_tf.train.trainer.train` for the arguments)."""
    workers = workers or Workers.single()
    distillation = config.get("distillation")
    if not distillation:
        return train(config, restart=restart, init_model=init_model, init_frz_model=init_frz_model,
                     output=output, workers=workers, finetune=finetune)
    if workers.is_root:
        teacher_labels = label_with_teacher(config)
    workers.barrier()
    if not workers.is_root:
        teacher_labels = cached_labels(config)
    return train(config, restart=restart, init_model=init_model, init_frz_model=init_frz_model, output=output,
                 workers=workers, finetune=finetune, extra_train_systems=[teacher_labels], input_share=distillation.get("dft_weight"),
                 comparisons=functools.partial(distillation_comparisons, config))
