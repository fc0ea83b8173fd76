"""Every key of DeepH-pack's (1.0.6) training and inference TOMLs, with DeepH-pack's defaults.

A key absent from a file takes DeepH-pack's default (not deeph_tf's), so a file means what it
means to DeepH-pack. ``REQUIRED`` marks keys without a default. The types are checked here;
the values, by the conversion (:mod:`.train`, :mod:`.infer`) and then by the schema.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

#: The default of a key that has none.
REQUIRED = object()
#: The default of an optional key that has none (absent: not used).
ABSENT = object()


@dataclass(frozen=True)
class Key:
    default: Any
    kind: str  # "str", "int", "float", "bool", "pair" (two floats)

    def accepts(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        if self.kind == "float":
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind == "pair":
            return isinstance(value, list) and len(value) == 2 and all(Key(0, "float").accepts(v) for v in value)
        return isinstance(value, str)

    @property
    def expected(self) -> str:
        return {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
                "pair": "a list of two numbers"}[self.kind]


SYSTEM: Dict[str, Key] = {
    "system.note": Key("Enjoy DeepH-pack! ;-)", "str"),
    "system.device": Key("gpu*8:0", "str"),
    "system.float_type": Key("fp32", "str"),
    "system.random_seed": Key(137, "int"),
    "system.log_level": Key("info", "str"),
    "system.jax_memory_preallocate": Key(True, "bool"),
    "system.show_train_process_bar": Key(True, "bool"),
}

DATA: Dict[str, Key] = {
    "data.inputs_dir": Key(REQUIRED, "str"),
    "data.outputs_dir": Key(ABSENT, "str"),
    "data.dft.data_dir_depth": Key(0, "int"),
    "data.dft.validation_check": Key(False, "bool"),
    "data.graph.dataset_name": Key("DATASET-DEMO", "str"),
    "data.graph.graph_type": Key("H", "str"),
    "data.graph.storage_type": Key("memory", "str"),
    "data.graph.common_orbital_types": Key("", "str"),
    "data.graph.parallel_num": Key(-1, "int"),
    "data.graph.only_save_graph": Key(False, "bool"),
}

TRAIN: Dict[str, Key] = {
    **SYSTEM,
    **DATA,
    "data.model_save.best": Key(True, "bool"),
    "data.model_save.latest": Key(True, "bool"),
    "data.model_save.latest_interval": Key(100, "int"),
    "data.model_save.latest_num": Key(10, "int"),
    "model.net_type": Key("normal", "str"),
    "model.target_type": Key("H", "str"),
    "model.loss_type": Key("mse", "str"),
    "model.advanced.gaussian_basis_rmax": Key(7.5, "float"),
    "model.advanced.net_irreps": Key("", "str"),
    "model.advanced.num_blocks": Key(3, "int"),
    "model.advanced.consider_parity": Key(True, "bool"),
    "model.advanced.standardize_gauge": Key(False, "bool"),
    "model.advanced.num_heads": Key(ABSENT, "int"),
    "model.advanced.enable_bs3b_layer": Key(False, "bool"),
    "model.advanced.bs3b_orbital_types": Key(ABSENT, "str"),
    "process.train.max_epoch": Key(10000, "int"),
    "process.train.multi_way_jit_num": Key(1, "int"),
    "process.train.ahead_of_time_compile": Key(False, "bool"),
    "process.train.do_remat": Key(False, "bool"),
    "process.train.drop.dropout_rate": Key(0.0, "float"),
    "process.train.drop.stochastic_depth": Key(0.0, "float"),
    "process.train.drop.proj_rate": Key(0.0, "float"),
    "process.train.dataloader.batch_size": Key(1, "int"),
    "process.train.dataloader.train_size": Key(1, "int"),
    "process.train.dataloader.validate_size": Key(0, "int"),
    "process.train.dataloader.test_size": Key(0, "int"),
    "process.train.dataloader.dataset_split_json": Key("", "str"),
    "process.train.dataloader.only_use_train_loss": Key(False, "bool"),
    "process.train.optimizer.type": Key("adamw", "str"),
    "process.train.optimizer.init_learning_rate": Key(2e-3, "float"),
    "process.train.optimizer.clip_norm_factor": Key(-1.0, "float"),
    "process.train.optimizer.momentum": Key(0.8, "float"),
    "process.train.optimizer.betas": Key([0.9, 0.999], "pair"),
    "process.train.optimizer.eps": Key(1e-8, "float"),
    "process.train.optimizer.weight": Key(0.001, "float"),
    "process.train.scheduler.type": Key("reduce_on_plateau", "str"),
    "process.train.scheduler.min_learning_rate_scale": Key(1e-4, "float"),
    "process.train.scheduler.factor": Key(0.5, "float"),
    "process.train.scheduler.patience": Key(500, "int"),
    "process.train.scheduler.rtol": Key(0.05, "float"),
    "process.train.scheduler.cooldown": Key(100, "int"),
    "process.train.scheduler.accum_size": Key(-1, "int"),
    "process.train.scheduler.init_scale": Key(0.1, "float"),
    "process.train.scheduler.warmup_steps": Key(1000, "int"),
    "process.train.scheduler.decay_steps": Key(200000, "int"),
    "process.train.scheduler.end_scale": Key(-1.0, "float"),
    "process.train.continued.enable": Key(False, "bool"),
    "process.train.continued.new_training_data": Key(False, "bool"),
    "process.train.continued.new_optimizer": Key(False, "bool"),
    "process.train.continued.previous_output_dir": Key("", "str"),
    "process.train.continued.load_model_type": Key("latest", "str"),
    "process.train.continued.load_model_epoch": Key(-1, "int"),
}

INFER: Dict[str, Key] = {
    **SYSTEM,
    **DATA,
    "model.model_dir": Key(REQUIRED, "str"),
    "model.load_model_type": Key("latest", "str"),
    "model.load_model_epoch": Key(-1, "int"),
    "process.infer.output_type": Key("h5", "str"),
    "process.infer.output_into": Key("to_output", "str"),
    "process.infer.target_symmetrize": Key(True, "bool"),
    "process.infer.multi_way_jit_num": Key(1, "int"),
    "process.infer.dataloader.batch_size": Key(1, "int"),
}


def sections(table: Dict[str, Key]) -> Tuple[str, ...]:
    """The tables (``process.train.optimizer``, ``process.train``, ``process``, ...) of ``table``'s keys."""
    out = set()
    for key in table:
        parts = key.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return tuple(sorted(out))
