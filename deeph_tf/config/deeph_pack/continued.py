"""Which saved model a TOML names: ``[process.train.continued]`` and inference's ``[model]``.

A run folder made by a TOML run (``<outputs_dir>/<timestamp>/``) keeps its checkpoints in
``model/`` (DeepH-pack's layout); a plain dtrain folder keeps them beside its ``checkpoint``
pointer. ``load_model_type = "best"`` is ``model.ckpt-best.h5``; ``"latest"`` with
``load_model_epoch = -1`` the newest checkpoint; with an epoch E, the checkpoint written at the
end of epoch E: step ceil(E x steps_per_epoch), the steps per epoch recorded in the checkpoints.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from deeph_tf.config.deeph_pack.reader import TomlInput

CONTINUED = "process.train.continued"
#: The flags of dtrain a continued run maps onto.
RESTART, INIT_MODEL, INIT_FRZ_MODEL = "restart", "init_model", "init_frz_model"


def _attrs(path: Path) -> Dict[str, Any]:
    """A checkpoint's JSON attributes (step, input, extra) without reading its arrays."""
    import h5py

    with h5py.File(path, "r") as handle:
        out = {name: json.loads(handle.attrs[name]) for name in ("input", "extra") if name in handle.attrs}
        out["step"] = int(handle.attrs.get("step", -1))
    return out


def saved_model(toml: TomlInput, dir_key: str, type_key: str, epoch_key: str) -> Tuple[Path, bool]:
    """(checkpoint file or frozen-model folder, is_frozen) named by the three keys."""
    folder = Path(toml[dir_key])
    load_type, epoch = toml[type_key], toml[epoch_key]
    if load_type not in ("best", "latest"):
        raise toml.refuse(type_key, "expected \"best\" or \"latest\"")
    if load_type == "best" and epoch != -1:
        raise toml.refuse(epoch_key, "selects among the latest models; with load_model_type = \"best\" it must be -1")
    if (folder / "saved_model.pb").is_file():
        if epoch != -1 or toml.given(type_key):
            toml.note(f"{type_key}, {epoch_key}: unused, {folder} is a frozen model (one model)")
        return folder, True
    pointer_dir = next((d for d in (folder / "model", folder) if (d / "checkpoint").is_file()), None)
    if pointer_dir is None:
        raise toml.refuse(dir_key, f"not a run folder: neither {folder / 'model' / 'checkpoint'} nor "
                          f"{folder / 'checkpoint'} (the pointer dtrain writes beside its checkpoints) exists, and it "
                          "is no frozen model (dfreeze)")
    try:
        pointer = json.loads((pointer_dir / "checkpoint").read_text())
    except (OSError, ValueError) as error:
        raise toml.refuse(dir_key, f"unreadable checkpoint pointer {pointer_dir / 'checkpoint'} ({error})") from None
    if load_type == "best":
        if not pointer.get("best"):
            raise toml.refuse(type_key, f"no best model recorded in {pointer_dir}; use \"latest\"")
        return pointer_dir / pointer["best"], False
    latest = pointer.get("latest")
    if not latest:
        raise toml.refuse(dir_key, f"no checkpoint recorded in {pointer_dir}")
    if epoch == -1:
        return pointer_dir / latest, False
    per_epoch = _attrs(pointer_dir / latest).get("extra", {}).get("steps_per_epoch")
    if not per_epoch:
        raise toml.refuse(epoch_key, f"the checkpoints in {pointer_dir} do not record their epoch (written before "
                          "deeph_tf recorded steps per epoch); use -1 or dtrain -r <checkpoint file>")
    step = math.ceil(epoch * per_epoch - 1e-9)
    prefix = latest.rsplit("-", 1)[0]
    chosen = pointer_dir / f"{prefix}-{step}.h5"
    if not chosen.is_file():
        kept = sorted(int(name.rsplit("-", 1)[1][:-3]) for name in pointer.get("kept", []))
        epochs = ", ".join(f"{s / per_epoch:g}" for s in kept)
        raise toml.refuse(epoch_key, f"no checkpoint of epoch {epoch} (step {step}) in {pointer_dir}; kept epochs: "
                          f"{epochs or 'none'}")
    toml.note(f"{epoch_key} = {epoch}: step {step} ({per_epoch:g} steps per epoch), {chosen}")
    return chosen, False


def _same_data(previous: Dict[str, Any], config: Dict[str, Any]) -> Optional[str]:
    """None when ``config`` trains on the data of the ``previous`` input, else what differs."""
    def resolved(systems: Any) -> Any:
        return [str(Path(s).resolve()) for s in ([systems] if isinstance(systems, str) else systems or [])]

    old, new = previous.get("training", {}), config["training"]
    if resolved(old.get("training_data", {}).get("systems")) != resolved(new["training_data"]["systems"]):
        return f"systems {old.get('training_data', {}).get('systems')!r} -> {new['training_data']['systems']!r}"
    old_split, new_split = old.get("dataset", {}).get("split"), new["dataset"]["split"]
    if old_split != new_split:
        return f"split {old_split!r} -> {new_split!r}"
    return None


def start(toml: TomlInput, config: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    """The dtrain start option of ``[process.train.continued]``: (restart | init_model | init_frz_model, path)."""
    keys = ("new_training_data", "new_optimizer", "previous_output_dir", "load_model_type", "load_model_epoch")
    if not toml[f"{CONTINUED}.enable"]:
        written = [k for k in keys if toml.given(f"{CONTINUED}.{k}")]
        if written:
            toml.note(f"{CONTINUED}.{', '.join(written)}: unused, continued.enable is false (a fresh model)")
        return None
    if not toml[f"{CONTINUED}.previous_output_dir"]:
        raise toml.refuse(f"{CONTINUED}.previous_output_dir", "required when continued.enable is true: the folder "
                          "of the earlier run")
    path, frozen = saved_model(toml, f"{CONTINUED}.previous_output_dir", f"{CONTINUED}.load_model_type",
                               f"{CONTINUED}.load_model_epoch")
    new_optimizer = toml[f"{CONTINUED}.new_optimizer"]
    if frozen and not new_optimizer:
        raise toml.refuse(f"{CONTINUED}.new_optimizer", f"{path} is a frozen model, without optimizer state: set "
                          "new_optimizer = true (or point previous_output_dir at the run folder)")
    if not toml[f"{CONTINUED}.new_training_data"]:
        previous = (json.loads((path / "metadata.json").read_text()) if frozen else _attrs(path)).get("input", {})
        differs = _same_data(previous, config)
        if differs:
            raise toml.refuse(f"{CONTINUED}.new_training_data", f"false continues on the data of the previous run, "
                              f"but this file's data differ ({differs}); set new_training_data = true to train on "
                              "other data")
    flag = INIT_FRZ_MODEL if frozen else (INIT_MODEL if new_optimizer else RESTART)
    toml.note(f"{CONTINUED}: dtrain --{flag.replace('_', '-')} {path} ("
              + ("saved optimizer, schedule and step continue; max_epoch is the absolute target" if flag == RESTART
                 else "weights only, a new optimizer and schedule from step 0; data may add or drop elements")
              + "); the architecture and orbital layout come from that model, the model.* keys describe it")
    return flag, str(path)
