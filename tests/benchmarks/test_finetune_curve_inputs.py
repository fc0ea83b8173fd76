"""The per-budget inputs of benchmarks/finetune_curve.py are valid dtrain inputs with the schedule asked for."""
import importlib.util
import json
from pathlib import Path

import pytest

from deeph_tf.config.normalize import normalize
from deeph_tf.train.schedules import build_schedule

REPO_ROOT = Path(__file__).resolve().parents[2]
GRAPHENE_INPUT = REPO_ROOT / "examples" / "graphene" / "input.json"


@pytest.fixture(scope="module")
def finetune_curve():
    spec = importlib.util.spec_from_file_location("finetune_curve", REPO_ROOT / "benchmarks" / "finetune_curve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _budget_schedule(module, steps, **kwargs):
    base = json.loads(GRAPHENE_INPUT.read_text())
    config = module.run_input(base, GRAPHENE_INPUT.parent, steps, Path("/tmp/graphs"), **kwargs)
    normalized = normalize(config)
    return config, build_schedule(normalized["learning_rate"], normalized["training"]["numb_steps"])


def test_input_schedule_is_stretched_over_the_budget_and_scaled(finetune_curve):
    base = json.loads(GRAPHENE_INPUT.read_text())["learning_rate"]
    config, schedule = _budget_schedule(finetune_curve, 360, lr_scale=0.3)
    assert config["training"]["numb_steps"] == 360
    assert schedule.lr(0) == pytest.approx(0.3 * base["start_lr"])
    assert schedule.lr(360) == pytest.approx(0.3 * base["stop_lr"], rel=1e-6)
    assert Path(config["training"]["training_data"]["systems"]).is_absolute()


def test_warmup_cosine_is_deeph_packs_fine_tuning_shape(finetune_curve):
    base = json.loads(GRAPHENE_INPUT.read_text())["learning_rate"]
    peak = 0.3 * base["start_lr"]
    config, schedule = _budget_schedule(finetune_curve, 400, lr_scale=0.3, schedule="warmup_cosine")
    assert config["learning_rate"]["type"] == "warmup_cosine"
    assert schedule.lr(0) == pytest.approx(0.1 * peak)      # init_scale 0.1
    assert schedule.lr(20) == pytest.approx(peak)           # warmup over 5% of the budget
    assert schedule.lr(210) == pytest.approx(peak * (1 + 1e-3) / 2)  # half way through the cosine
    assert schedule.lr(400) == pytest.approx(1e-3 * peak)   # end_scale 1e-3
    assert max(schedule.lr(t) for t in range(401)) == pytest.approx(peak)


def test_unknown_schedule_is_refused(finetune_curve):
    with pytest.raises(ValueError, match="unknown schedule"):
        _budget_schedule(finetune_curve, 100, schedule="linear")
