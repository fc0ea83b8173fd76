"""Markdown pieces of the report: cells, tables, the configuration rows and the metrics-vs-targets section."""
from __future__ import annotations

import math
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

__all__ = ["config_value", "cell_text", "markdown_table", "format_number", "format_duration", "format_mib",
           "configuration_rows", "metrics_section"]


def config_value(config: Mapping[str, Any], *keys: str) -> Any:
    node: Any = config
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def cell_text(value: Any, limit: int = 120) -> str:
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
        text = ", ".join(items[:4]) + (f", ... ({len(items)} in all)" if len(items) > 4 else "")
    elif isinstance(value, Mapping):
        text = ", ".join(f"{k}: {v}" for k, v in value.items())
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def format_number(value: Any, spec: str = "%.4g", missing: str = "n/a",
                  text: Optional[Callable[[Any], str]] = None) -> str:
    """A finite number as ``spec``, nan/inf as Python writes them, None as ``missing``, anything
    else through ``text`` (default :func:`cell_text`)."""
    if value is None:
        return missing
    try:
        number = float(value)
    except (TypeError, ValueError):
        return (text or cell_text)(value)
    return spec % number if math.isfinite(number) else str(number)


def format_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "n/a"
    seconds = float(seconds)
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{seconds:.1f} s ({hours:d}:{minutes:02d}:{secs:02d})"


def format_mib(value: Optional[float]) -> str:
    return "not measured" if value is None else f"{float(value):.1f} MiB"


def configuration_rows(record: Mapping[str, Any]) -> List[Tuple[str, str]]:
    config = record.get("config") or {}
    rows: List[Tuple[str, str]] = [("target", cell_text(record.get("target")))]
    for label, keys in (
        ("model preset", ("model", "preset")),
        ("precision", ("model", "precision")),
        ("cutoff (A)", ("model", "cutoff")),
        ("hidden irreps", ("model", "irreps_hidden")),
        ("blocks", ("model", "num_blocks")),
        ("lmax of the spherical harmonics", ("model", "lmax_sh")),
        ("loss type", ("loss", "type")),
    ):
        value = config_value(config, *keys)
        if value is not None:
            rows.append((label, cell_text(value)))
    loss = config_value(config, "loss")
    if isinstance(loss, Mapping):
        prefactors = [(k, v) for k, v in loss.items() if k.startswith(("start_pref_", "limit_pref_"))]
        if prefactors:
            rows.append(("loss prefactors", ", ".join(f"{k} {cell_text(v)}" for k, v in sorted(prefactors))))
    lr = config_value(config, "learning_rate")
    if isinstance(lr, Mapping) and lr:
        parts = [f"{k} {cell_text(lr[k])}" for k in ("start_lr", "stop_lr", "decay_steps", "warmup_steps") if k in lr]
        rows.append(("learning rate", cell_text(lr.get("type", "exp")) + (" (" + ", ".join(parts) + ")" if parts else "")))
    for label, keys in (
        ("optimizer", ("optimizer", "type")),
        ("batch size", ("training", "training_data", "batch_size")),
        ("numb_steps", ("training", "numb_steps")),
        ("seed", ("training", "seed")),
        ("training systems", ("training", "training_data", "systems")),
        ("validation systems", ("training", "validation_data", "systems")),
        ("dataset split", ("training", "dataset", "split")),
    ):
        value = config_value(config, *keys)
        if value is not None:
            rows.append((label, cell_text(value)))
    return rows


def _status(value: Any, target: Any) -> str:
    try:
        value_f, target_f = float(value), float(target)
    except (TypeError, ValueError):
        return "NOT met (not a number)"
    if math.isnan(value_f):
        return "NOT met (nan)"
    return "met" if value_f <= target_f else "NOT met"


def metrics_section(final: Optional[Mapping[str, Any]], targets: Mapping[str, Any]) -> List[str]:
    lines: List[str] = []
    if final is None:
        lines.append("No final evaluation in the record (a partial report, or a run without one).")
        metrics: Mapping[str, Any] = {}
        units: Mapping[str, Any] = {}
    else:
        metrics = final.get("metrics") or {}
        units = final.get("units") or {}
        lines.append(f"On the `{final.get('subset')}` subset ({final.get('structures')} structures):")
        lines.append("")
        if metrics:
            lines.append(markdown_table(["metric", "value", "unit"],
                                [(f"`{name}`", format_number(value), cell_text(units.get(name, ""))) for name, value in metrics.items()]))
        else:
            lines.append("No metrics were computed.")
    lines.append("")
    if not targets:
        lines.append("No targets were set in the input.")
        return lines
    available = ", ".join(f"`{name}`" for name in metrics) or "none"
    rows = []
    for name, target in targets.items():
        unit = cell_text(units.get(name, ""))
        if name in metrics:
            rows.append((f"`{name}`", format_number(metrics[name]), format_number(target), unit, _status(metrics[name], target)))
        else:
            rows.append((f"`{name}`", "", format_number(target), unit, f"not computed (available: {available})"))
    lines.append("Targets (upper bounds):")
    lines.append("")
    lines.append(markdown_table(["metric", "value", "target", "unit", "status"], rows))
    met = sum(1 for row in rows if row[-1] == "met")
    lines.append("")
    lines.append(f"{met} of {len(rows)} target(s) met.")
    return lines
