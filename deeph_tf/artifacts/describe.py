"""What a saved model covers, for ``dinspect MODEL``: elements and their orbitals, cutoffs,
architecture, parameters and the data it was trained on (and fine-tuned from).

Reads a checkpoint (file, prefix or folder) with h5py, or a frozen model's ``metadata.json``;
TensorFlow is loaded only to count the parameters of a frozen model saved before
``metadata.json`` carried the count.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from deeph_tf.artifacts.checkpoint import CheckpointError, PathLike, read_checkpoint, resolve_checkpoint
from deeph_tf.artifacts.frozen import is_frozen_model, read_frozen_metadata

#: Model options shown under "architecture", in this order.
ARCHITECTURE_KEYS = ("irreps_hidden", "num_blocks", "lmax_sh", "num_radial_basis", "radial_hidden", "convolution",
                     "parity", "avg_num_neighbors", "symmetrize")


def is_saved_model(path: PathLike) -> bool:
    """Whether ``path`` names a frozen model or a checkpoint (file, prefix, or folder with a pointer)."""
    path = Path(path)
    if is_frozen_model(path):
        return True
    try:
        resolved = resolve_checkpoint(path)
    except CheckpointError:
        return False
    return resolved.suffix == ".h5"


@dataclass
class ModelDescription:
    """A saved model's facts (JSON-serializable through :meth:`to_dict`)."""

    kind: str
    source: str
    step: int
    version: str
    target: str
    dtype: str
    model_config: Dict[str, Any]
    layout: Dict[str, Any]
    parameters: int
    training_data: Dict[str, Any]
    training_input: Dict[str, Any]

    @property
    def elements(self) -> List[str]:
        return list(self.model_config.get("elements") or self.layout.get("elements_orbital_map", {}))

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "step": self.step, "version": self.version,
                "target": self.target, "dtype": self.dtype, "elements": self.elements, "layout": self.layout,
                "cutoff_A": self.model_config.get("cutoff"), "pair_cutoffs_A": self.model_config.get("pair_cutoffs"),
                "periodic_images": self.model_config.get("periodic_images"),
                "architecture": {k: self.model_config.get(k) for k in ARCHITECTURE_KEYS if k in self.model_config},
                "parameters": self.parameters, "training_data": self.training_data}

    def format(self) -> str:
        """A human-readable report."""
        from deeph_tf.conventions import orbital_types_string

        config, lines = self.model_config, []
        lines.append(f"model:                 {self.source} ({self.kind}, step {self.step}, deeph_tf {self.version})")
        lines.append(f"target:                {self.target} ({self.dtype})")
        orbital_map = self.layout.get("elements_orbital_map", {})
        lines.append(f"elements:              {len(self.elements)}: {' '.join(self.elements)}")
        for element, shells in orbital_map.items():
            n_orb = sum(2 * l + 1 for l in shells)
            lines.append(f"  {element:<3} {orbital_types_string(sorted(shells)):<10} {n_orb:>3} orbitals  shells {list(shells)}")
        lines.append(f"common orbital types:  {self.layout.get('common_orbital_types_str')} "
                     f"({self.layout.get('common_orbital_num')} orbitals)")
        if "cutoff" in config:
            lines.append(f"radial cutoff:         {config['cutoff']:.3f} A")
        pair = config.get("pair_cutoffs")
        if pair:
            lines.append(f"graph of POSCAR-only prediction: per element pair, the longest training edge (A); "
                         f"periodic images {'yes' if config.get('periodic_images') else 'no'}")
            width = max(5, *(len(e) for e in self.elements))
            lines.append("  " + " " * width + "".join(f"{e:>8}" for e in self.elements))
            for element, row in zip(self.elements, pair):
                lines.append(f"  {element:<{width}}" + "".join(f"{v:>8.2f}" if v > 0 else f"{'-':>8}" for v in row))
        else:
            lines.append("graph of POSCAR-only prediction: not stored (model saved before per-pair cutoffs); "
                         "give dpredict --radius-cutoff")
        arch = ", ".join(f"{k} {config[k]}" for k in ARCHITECTURE_KEYS if k in config)
        lines.append(f"architecture:          {arch}")
        lines.append(f"parameters:            {self.parameters:,}")
        lines.extend(self._training_lines())
        return "\n".join(lines)

    def _training_lines(self) -> List[str]:
        data = self.training_data
        if not data:
            systems = self.training_input.get("training", {}).get("training_data", {}).get("systems")
            return [f"trained on:            {systems} (no data summary: model saved before it was recorded)"]
        lines = [f"trained on:            {data.get('systems')}"]
        for name, counts in (data.get("subsets") or {}).items():
            if counts.get("structures"):
                lines.append(f"  {name:<9} {counts.get('structures', 0):>6} structures {counts.get('atoms', 0):>8} atoms "
                             f"{counts.get('edges', 0):>10} edges")
        for k, stage in enumerate(data.get("lineage") or []):
            lines.append(f"  started from ({k + 1}): {stage.get('model')} ({stage.get('kind')}, step {stage.get('step')}), "
                         f"trained on {stage.get('systems')} with elements {stage.get('elements')}")
        return lines


def describe_model(path: PathLike) -> ModelDescription:
    """The :class:`ModelDescription` of the frozen model or checkpoint at ``path``."""
    path = Path(path)
    if is_frozen_model(path):
        meta = read_frozen_metadata(path)
        parameters = meta.get("parameters")
        if parameters is None:
            from deeph_tf.artifacts.frozen import load_frozen_weights

            parameters = _count(load_frozen_weights(path)[1])
        return ModelDescription(
            kind="frozen", source=str(path), step=int(meta.get("step") or 0), version=str(meta.get("version", "?")),
            target=str(meta.get("target", "hamiltonian")), dtype=str(meta.get("dtype", "?")),
            model_config=dict(meta.get("model_config") or {}), layout=dict(meta.get("layout") or {}),
            parameters=int(parameters), training_data=dict(meta.get("training_data") or {}),
            training_input=dict(meta.get("input") or {}))
    checkpoint = read_checkpoint(resolve_checkpoint(path))
    model_input = checkpoint.input or {}
    return ModelDescription(
        kind="checkpoint", source=str(checkpoint.path), step=checkpoint.step, version=checkpoint.version,
        target=str(model_input.get("model", {}).get("target", "hamiltonian")),
        dtype=str(_dtype_name(checkpoint.model_config)), model_config=dict(checkpoint.model_config),
        layout=dict(checkpoint.layout), parameters=_count(checkpoint.model_weights),
        training_data=dict(checkpoint.extra.get("training_data") or {}), training_input=dict(model_input))


def _count(weights) -> int:
    return int(sum(int(np.prod(np.shape(w))) for w in weights))


def _dtype_name(config: Dict[str, Any]) -> Optional[str]:
    dtype = config.get("dtype")
    if isinstance(dtype, dict):  # a Keras DTypePolicy config
        return (dtype.get("config") or {}).get("name", str(dtype))
    return dtype


__all__ = ["ModelDescription", "describe_model", "is_saved_model"]
