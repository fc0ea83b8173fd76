"""The ``[system]`` keys and the timestamped run folder, shared by training and inference TOMLs.

:class:`Runtime` is what the commands apply before TensorFlow starts (:func:`apply_runtime`):
the device, TF32 and the log level; nothing here changes what is computed beyond that.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from deeph_tf.config.deeph_pack.reader import TomlInput

logger = logging.getLogger(__name__)

#: DeepH-pack's run folders below outputs_dir.
RUN_FOLDER_FORMAT = "%Y-%m-%d_%H-%M-%S"
_DEVICE = re.compile(r"^\s*(cpu|gpu|cuda|rocm|dcu)\s*(?:\*\s*(\d+))?\s*(?::\s*([0-9,\-\s]+))?\s*$")
LOG_LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "critical": "CRITICAL"}
#: float_type -> (model.precision, training.dataset.dtype, TF32 matmuls allowed)
FLOAT_TYPES = {"fp32": ("float32", "float32", False), "tf32": ("float32", "float32", True),
               "fp64": ("float64", "float64", False), "bf16": ("mixed_bfloat16", "float32", True)}


@dataclass
class Runtime:
    """Process settings from ``[system]``: device type and ids, TF32 matmuls, log level."""

    device_type: str
    device_ids: Optional[List[int]]
    tf32: bool
    log_level: Optional[str]


def _ids(text: str, toml: TomlInput) -> List[int]:
    ids: List[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise toml.refuse("system.device", "expected <type>*<num>:<ids> such as \"gpu*8:0\" or \"gpu*8:1-4,7\"")
        ids.extend(range(int(low), int(high or low) + 1))
    return ids


def runtime(toml: TomlInput) -> Runtime:
    """Check the ``[system]`` keys and note the ones that change nothing computed (and why)."""
    match = _DEVICE.match(toml["system.device"])
    if not match:
        raise toml.refuse("system.device", "expected <type>*<num>:<ids> with type cpu, gpu, cuda, rocm or dcu, "
                          "such as \"gpu*8:0\", \"gpu*1\" or \"cpu\"")
    kind = "cpu" if match.group(1) == "cpu" else "gpu"
    per_node = int(match.group(2) or 1)
    ids = _ids(match.group(3), toml) if match.group(3) else None
    used = len(ids) if ids else per_node
    if used != 1:
        raise toml.refuse("system.device", f"{used} devices: deeph_tf trains and predicts on one device per process; "
                          "for several GPUs run `horovodrun -np N dtrain FILE` with device = \"gpu*1\" (data-parallel, "
                          "batch_size structures per worker), for the CPU use \"cpu\" (TensorFlow uses every core)")
    if ids and any(i >= per_node for i in ids):
        raise toml.refuse("system.device", f"device id {max(ids)} is not among the {per_node} devices of the node")
    float_type = toml["system.float_type"]
    if float_type not in FLOAT_TYPES:
        raise toml.refuse("system.float_type", "expected \"fp32\", \"tf32\", \"fp64\" or \"bf16\"")
    level = toml["system.log_level"]
    if level not in LOG_LEVELS:
        raise toml.refuse("system.log_level", "expected \"debug\", \"info\", \"warning\" or \"critical\"")
    toml.note(f"system.device = {toml['system.device']!r}: one {kind.upper()}"
              + (f" (id {ids[0]}: CUDA_VISIBLE_DEVICES={ids[0]} unless already set)" if ids and kind == "gpu" else "")
              + ("" if kind == "cpu" else "; the CPU when TensorFlow sees no GPU"))
    toml.note(f"system.note = {toml['system.note']!r}: a label, not used in any computation")
    toml.note(f"system.jax_memory_preallocate = {toml['system.jax_memory_preallocate']}: JAX's memory option; "
              "it changes where memory comes from, not what is computed (TensorFlow manages its own)")
    if toml.kind == "train":
        toml.note(f"system.show_train_process_bar = {toml['system.show_train_process_bar']}: display only; dtrain "
                  "shows its progress bar when stderr is a terminal")
    toml.note(f"data.dft.validation_check = {toml['data.dft.validation_check']}: deeph_tf always checks structures "
              "while reading them (files, elements, Hermiticity); on valid data the result is the same")
    return Runtime(kind, ids, FLOAT_TYPES[float_type][2], LOG_LEVELS[level])


def precision(toml: TomlInput) -> Tuple[str, str]:
    """(model.precision, training.dataset.dtype) of system.float_type, noted."""
    model_precision, dtype, tf32 = FLOAT_TYPES[toml["system.float_type"]]
    toml.note(f"system.float_type = {toml['system.float_type']!r}: model.precision {model_precision!r}, graphs "
              f"{dtype}, TF32 matmuls {'allowed' if tf32 else 'off'}"
              + (" (bf16 message passing; parameters, geometry, heads and loss in float32)" if model_precision ==
                 "mixed_bfloat16" else ""))
    return model_precision, dtype


def run_folder(toml: TomlInput, now: Optional[_dt.datetime] = None) -> Optional[Path]:
    """``<outputs_dir>/<%Y-%m-%d_%H-%M-%S>`` (``_2``, ``_3``... if taken), or None without outputs_dir.

    Only the name is chosen here; the folder is made when the run writes into it.
    """
    outputs = toml["data.outputs_dir"]
    if not isinstance(outputs, str) or not outputs:
        toml.note("data.outputs_dir not set: the outputs go to the working directory (DeePMD layout)")
        return None
    stamp = (now or _dt.datetime.now()).strftime(RUN_FOLDER_FORMAT)
    folder, n = Path(outputs) / stamp, 1
    while folder.exists():
        n += 1
        folder = Path(outputs) / f"{stamp}_{n}"
    return folder


def apply_runtime(settings: Runtime, tensorflow: bool = True) -> None:
    """Apply the log level (unless None), the device (before TensorFlow starts, where possible) and,
    with ``tensorflow``, TF32 (this imports TensorFlow)."""
    if settings.log_level:
        logging.getLogger().setLevel(settings.log_level)
    if settings.device_type == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif settings.device_ids and "CUDA_VISIBLE_DEVICES" not in os.environ:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in settings.device_ids)
    if "tensorflow" in sys.modules and settings.device_type == "cpu":
        import tensorflow as tf

        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # TensorFlow already initialized its devices
            logger.warning("system.device \"cpu\": TensorFlow had started already; GPUs it sees stay visible")
    if tensorflow:
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(settings.tf32)
