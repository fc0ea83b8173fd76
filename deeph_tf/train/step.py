"""XLA-compiled training and evaluation steps, with a count of (re)compilations.

A step takes a padded batch (one of a few bucket shapes) and runs under
``tf.function(jit_compile=True)``; every new input shape traces and compiles once. The
``traces`` counters say how often that happened, so a run can report it.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional

import tensorflow as tf

from deeph_tf.model.network import model_inputs
from deeph_tf.train.objectives import BlockObjective

logger = logging.getLogger(__name__)


class CompiledSteps:
    """Train/eval steps of one model and optimizer.

    Args:
        model: a built :class:`~deeph_tf.model.network.HamiltonianModel`.
        optimizer: a Keras optimizer.
        loss: "mae" | "mse" | "huber" | "wmae" over the masked entries.
        operator: the target ("hamiltonian", "overlap", "density_matrix").
        clip_norm: global gradient-norm clipping (None: off).
        jit_compile: compile with XLA (True by default).
        gauge: DeepH's ``standardize_gauge``: train on gauge-corrected errors (needs S).
        objective: what to minimize and report (:mod:`deeph_tf.train.objectives`); by default a
            :class:`BlockObjective` from ``loss``, ``operator``, ``huber_delta`` and ``gauge``.
        gradient_transform: data-parallel training: ``f(tensors, count) -> (sums, count)`` summing
            both over the workers. Each step first sums the objective's ``loss_totals`` (what the
            loss is normalized by: counted entries, the wmae scale's sum of |target|, DeePMD's
            structure/atom counts), so each worker's loss is its share of the loss of the union
            of all workers' batches; the sum of the workers' gradients is then exactly the
            gradient on that union (N workers with batch b take the step of one worker with
            batch N*b, up to float reduction order), even when workers hold unequal numbers of
            entries. The gradients are computed under XLA, the collectives run outside it.
    """

    def __init__(self, model, optimizer, loss: str = "mae", operator: str = "hamiltonian",
                 clip_norm: Optional[float] = None, jit_compile: bool = True, huber_delta: float = 0.01,
                 gauge: bool = False, gradient_transform=None, objective=None):
        self.model, self.optimizer = model, optimizer
        self.objective = objective or BlockObjective(loss, operator, huber_delta, gauge)
        self.clip_norm = clip_norm
        self.gradient_transform = gradient_transform
        self.train_traces = 0
        self.eval_traces = 0
        self._train = tf.function(self._train_step, jit_compile=jit_compile)
        self._totals = tf.function(self._totals_step, jit_compile=jit_compile)
        self._gradient_part = tf.function(self._gradient_part_step, jit_compile=jit_compile)
        self._apply = tf.function(self._apply_step, jit_compile=jit_compile)
        self._eval = tf.function(self._eval_step, jit_compile=jit_compile)

    def _train_step(self, batch):
        self.train_traces += 1  # Python side effect: runs once per trace (new shape)
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            prediction = self.model(batch, training=True)
            loss = self.objective.loss(prediction, batch)
            scaled = self.optimizer.scale_loss(loss) if hasattr(self.optimizer, "scale_loss") else loss
        gradients = tape.gradient(scaled, variables)
        if self.clip_norm:
            gradients, _ = tf.clip_by_global_norm(gradients, self.clip_norm)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return dict(self._metrics(prediction, batch), loss=loss)

    def _totals_step(self, batch):
        return self.objective.loss_totals(batch, self.model.dtype_policy.variable_dtype)

    def _gradient_part_step(self, batch, totals):
        """Gradients of this worker's share of the union loss (``totals`` summed over the
        workers), and the metrics with this batch's own loss (no update)."""
        self.train_traces += 1
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            prediction = self.model(batch, training=True)
            share = self.objective.loss(prediction, batch, totals=totals)
            scaled = self.optimizer.scale_loss(share) if hasattr(self.optimizer, "scale_loss") else share
        gradients = [tf.convert_to_tensor(g) for g in tape.gradient(scaled, variables)]
        return gradients, dict(self._metrics(prediction, batch), loss=self.objective.loss(prediction, batch))

    def _apply_step(self, gradients):
        """One update with gradients summed over the workers."""
        if self.clip_norm:
            gradients, _ = tf.clip_by_global_norm(gradients, self.clip_norm)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))

    def _eval_step(self, batch):
        self.eval_traces += 1
        prediction = self.model(batch, training=False)
        loss = self.objective.loss(prediction, batch)
        return dict(self._metrics(prediction, batch), loss=loss)

    def _metrics(self, prediction, batch):
        """Per-batch sums of the objective's metrics (reduce, then divide)."""
        return self.objective.metric_sums(prediction, batch)

    def train(self, batch) -> dict:
        """One optimizer update on ``batch`` (string fields are dropped)."""
        inputs = model_inputs(batch)
        if self.gradient_transform is None:
            return self._train(inputs)
        totals = self._sum_over_workers(self._totals(inputs))
        gradients, metrics = self._gradient_part(inputs, totals)
        gradients, _ = self.gradient_transform(gradients, tf.zeros((), gradients[0].dtype))
        self._apply(list(gradients))
        return metrics

    def _sum_over_workers(self, values: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """Each value summed over the workers (one collective of ``gradient_transform``)."""
        names = sorted(values)
        sums, last = self.gradient_transform([values[name] for name in names[:-1]], values[names[-1]])
        return dict(zip(names, list(sums) + [last]))

    def evaluate(self, batch) -> dict:
        return self._eval(model_inputs(batch))
