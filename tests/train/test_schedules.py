"""Learning-rate schedules: DeePMD's exp formula, warmup + cosine, reduce on plateau, state round trips."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from deeph_tf.train.schedules import (
    ExponentialDecay,
    ReduceOnPlateau,
    WarmupCosine,
    build_schedule,
)


def deepmd_exp(start_lr, stop_lr, decay_steps, numb_steps, step):
    """DeePMD-kit's LearningRateExp (dpmodel), written out independently."""
    default_ds = 100 if numb_steps // 10 > 100 else numb_steps // 100 + 1
    if decay_steps >= numb_steps:
        decay_steps = default_ds
    rate = math.exp(math.log(stop_lr / start_lr) / (numb_steps / decay_steps))
    return max(start_lr * rate ** (step // decay_steps), stop_lr)


# ------------------------------------------------------------------ exp


def test_exp_values_at_the_staircase_edges():
    s = ExponentialDecay(1e-3, 1e-6, decay_steps=5000, numb_steps=100000)
    r = (1e-6 / 1e-3) ** (5000 / 100000)
    assert s.decay_steps == 5000
    assert s.decay_rate == pytest.approx(r, rel=1e-14)
    assert s.lr(0) == 1e-3
    assert s.lr(4999) == 1e-3  # staircase: no decay before decay_steps
    assert s.lr(5000) == pytest.approx(1e-3 * r, rel=1e-14)
    assert s.lr(9999) == pytest.approx(1e-3 * r, rel=1e-14)
    assert s.lr(10000) == pytest.approx(1e-3 * r**2, rel=1e-14)
    assert s.lr(100000) == pytest.approx(1e-6, rel=1e-12)  # numb_steps a multiple of decay_steps
    assert s.lr(10**7) == 1e-6  # never below stop_lr


@pytest.mark.parametrize(
    "start_lr, stop_lr, decay_steps, numb_steps",
    [(1e-3, 1e-6, 5000, 100000), (2e-3, 3.51e-8, 5000, 1000000), (1e-2, 1e-5, 7, 1000), (1e-3, 1e-3, 10, 100)],
)
def test_exp_matches_deepmd(start_lr, stop_lr, decay_steps, numb_steps):
    s = ExponentialDecay(start_lr, stop_lr, decay_steps, numb_steps)
    for step in (0, 1, decay_steps - 1, decay_steps, decay_steps + 1, numb_steps // 2, numb_steps - 1, numb_steps):
        assert s.lr(step) == pytest.approx(deepmd_exp(start_lr, stop_lr, decay_steps, numb_steps, step), rel=1e-13)


@pytest.mark.parametrize(
    "decay_steps, numb_steps, used",
    [
        (5000, 1000, 11),  # numb_steps // 10 = 100 is not > 100: numb_steps // 100 + 1
        (500, 500, 6),  # equal counts as too large too
        (5000, 1010, 100),  # numb_steps // 10 = 101 > 100: 100
        (20000, 10000, 100),
        (10, 5, 1),
        (99, 100, 99),  # smaller than numb_steps: kept
    ],
)
def test_exp_decay_steps_too_large_replaced_as_deepmd(decay_steps, numb_steps, used):
    s = ExponentialDecay(1e-3, 1e-6, decay_steps, numb_steps)
    assert s.decay_steps == used
    assert s.lr(numb_steps) == pytest.approx(deepmd_exp(1e-3, 1e-6, decay_steps, numb_steps, numb_steps), rel=1e-13)
    assert s.lr(used - 1) == 1e-3 and s.lr(used) < 1e-3


def test_exp_zero_steps_is_constant():
    s = ExponentialDecay(1e-3, 1e-6, 5000, 0)
    assert s.lr(0) == 1e-3


@pytest.mark.parametrize(
    "args",
    [(0.0, 1e-6, 10, 100), (1e-3, 0.0, 10, 100), (1e-3, 1e-2, 10, 100), (1e-3, 1e-6, 0, 100), (1e-3, 1e-6, 10, -1)],
)
def test_exp_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        ExponentialDecay(*args)
    with pytest.raises(ValueError):
        ExponentialDecay(1e-3, 1e-6, 10, 100).lr(-1)


# ------------------------------------------------------------------ warmup + cosine


def test_warmup_cosine_values():
    s = WarmupCosine(start_lr=1e-3, stop_lr=1e-5, warmup_steps=100, numb_steps=1100, warmup_start_lr=1e-4)
    assert s.lr(0) == pytest.approx(1e-4)
    assert s.lr(50) == pytest.approx(1e-4 + 0.5 * 9e-4)
    assert s.lr(99) == pytest.approx(1e-4 + 0.99 * 9e-4)
    assert s.lr(100) == pytest.approx(1e-3)  # the peak
    assert s.lr(600) == pytest.approx(0.5 * (1e-3 + 1e-5))  # half way through the decay
    assert s.lr(1100) == pytest.approx(1e-5)
    assert s.lr(5000) == pytest.approx(1e-5)
    lrs = [s.lr(t) for t in range(0, 1101, 10)]
    assert all(a <= b for a, b in zip(lrs[:11], lrs[1:11]))  # rising warmup
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # falling decay


def test_warmup_cosine_without_warmup_and_short_runs():
    s = WarmupCosine(1e-3, 0.0, warmup_steps=0, numb_steps=10)
    assert s.lr(0) == 1e-3 and s.lr(10) == 0.0
    assert s.lr(5) == pytest.approx(0.5e-3)
    s = WarmupCosine(1e-3, 1e-6, warmup_steps=100, numb_steps=50)  # ends inside the warmup
    assert s.lr(49) == pytest.approx(49e-5)
    assert s.lr(100) == 1e-6


def test_warmup_cosine_rejects_bad_arguments():
    for args in [(0.0, 0.0, 1, 1), (1e-3, 1e-2, 1, 1), (1e-3, -1.0, 1, 1), (1e-3, 0.0, -1, 1)]:
        with pytest.raises(ValueError):
            WarmupCosine(*args)


# ------------------------------------------------------------------ reduce on plateau


def feed(s, losses):
    return [s.update(loss) for loss in losses]


def test_plateau_reduces_after_patience_displays_without_improvement():
    s = ReduceOnPlateau(start_lr=1e-2, factor=0.5, patience=3, rtol=0.1, cooldown=0, min_lr=1e-4)
    assert s.lr(0) == 1e-2
    assert feed(s, [1.0, 0.5]) == [False, False]  # improvements
    assert s.best == 0.5
    feed(s, [0.46, 0.47])  # 0.46 > 0.5 * (1 - 0.1): not enough of an improvement
    assert s.lr(123) == 1e-2 and s.num_bad == 2 and s.best == 0.5
    assert s.update(0.5) is False  # third display without improvement: reduce
    assert s.lr(124) == 5e-3 and s.num_bad == 0
    feed(s, [0.44, 0.40])  # 0.44 < 0.45: improvement; 0.40 > 0.396: not
    assert s.best == 0.44 and s.num_bad == 1 and s.lr(0) == 5e-3


def test_plateau_cooldown_ignores_displays_after_a_reduction():
    s = ReduceOnPlateau(start_lr=1.0, factor=0.1, patience=1, rtol=0.0, cooldown=2, min_lr=1e-6)
    feed(s, [1.0, 1.0])
    assert s.lr(0) == pytest.approx(0.1)
    feed(s, [1.0, 1.0])  # cooldown: not counted
    assert s.lr(0) == pytest.approx(0.1)
    feed(s, [1.0])
    assert s.lr(0) == pytest.approx(0.01)


def test_plateau_stops_at_min_lr_after_another_plateau():
    s = ReduceOnPlateau(start_lr=1e-3, factor=0.5, patience=2, rtol=1e-3, cooldown=0, min_lr=3e-4)
    stops = feed(s, [1.0] + [1.0] * 2)
    assert s.lr(0) == 5e-4 and stops == [False, False, False]
    stops = feed(s, [1.0] * 2)
    assert s.lr(0) == 3e-4  # clipped to min_lr
    assert stops == [False, False]
    assert feed(s, [1.0, 1.0]) == [False, True]  # at min_lr and on a plateau again: stop
    assert s.stopped and s.lr(0) == 3e-4


def test_plateau_nan_is_never_an_improvement():
    s = ReduceOnPlateau(start_lr=1.0, patience=2, min_lr=0.0)
    feed(s, [float("nan"), float("inf")])
    assert s.best is None and s.lr(0) == 0.5
    s.update(3.0)
    assert s.best == 3.0


def test_plateau_rejects_bad_arguments():
    for kwargs in [dict(factor=1.0), dict(factor=0.0), dict(patience=0), dict(rtol=-1.0), dict(min_lr=1.0)]:
        with pytest.raises(ValueError):
            ReduceOnPlateau(start_lr=0.1, **kwargs)


# ------------------------------------------------------------------ state, build


def test_state_dict_round_trip_resumes_exactly():
    losses = [1.0, 0.9, 0.95, 0.97, 0.96, 0.899, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97]
    whole = ReduceOnPlateau(start_lr=1e-3, factor=0.5, patience=2, rtol=1e-2, cooldown=1, min_lr=2e-4)
    expected = [(whole.update(x), whole.lr(0)) for x in losses]

    first = ReduceOnPlateau(start_lr=1e-3, factor=0.5, patience=2, rtol=1e-2, cooldown=1, min_lr=2e-4)
    got = [(first.update(x), first.lr(0)) for x in losses[:5]]
    state = json.loads(json.dumps(first.state_dict(), allow_nan=False))  # strict JSON
    second = ReduceOnPlateau(start_lr=1e-3, factor=0.5, patience=2, rtol=1e-2, cooldown=1, min_lr=2e-4)
    second.load_state_dict(state)
    got += [(second.update(x), second.lr(0)) for x in losses[5:]]
    assert got == expected
    assert [stop for stop, _ in expected] == [False] * 12 + [True]  # two reductions, then a stop
    assert [lr for _, lr in expected][3::3] == [5e-4, 2.5e-4, 2e-4, 2e-4]

    fresh = ReduceOnPlateau(start_lr=1e-3)
    assert json.loads(json.dumps(fresh.state_dict(), allow_nan=False))["best"] is None


def test_stateless_schedules_state_and_type_check():
    exp = ExponentialDecay(1e-3, 1e-6, 10, 100)
    assert exp.state_dict() == {"type": "exp"}
    exp.load_state_dict({"type": "exp"})
    assert exp.update(1.0) is False
    cos = WarmupCosine(1e-3, 1e-6, 10, 100)
    with pytest.raises(ValueError, match="type 'exp'"):
        cos.load_state_dict(exp.state_dict())
    with pytest.raises(ValueError):
        ReduceOnPlateau(1e-3).load_state_dict({"type": "exp"})


def test_build_schedule_from_normalized_config():
    from deeph_tf.config import normalize

    def section(**lr):
        return normalize({"learning_rate": lr, "training": {"training_data": {"systems": "s"}}})["learning_rate"]

    s = build_schedule(section(), numb_steps=100000)
    assert isinstance(s, ExponentialDecay) and s.lr(5000) < 1e-3 and s.lr(100000) == pytest.approx(1e-6)
    s = build_schedule(section(type="warmup_cosine", warmup_steps=10, start_lr=0.1), numb_steps=20)
    assert isinstance(s, WarmupCosine) and s.lr(10) == pytest.approx(0.1) and s.lr(0) == 0.0
    s = build_schedule(section(type="reduce_on_plateau", patience=1), numb_steps=5)
    assert isinstance(s, ReduceOnPlateau) and s.patience == 1 and s.lr(0) == 1e-3
    assert isinstance(build_schedule({"start_lr": 1e-3, "stop_lr": 1e-5, "decay_steps": 10}, 100), ExponentialDecay)
    with pytest.raises(ValueError, match="unknown learning_rate type 'cosine'"):
        build_schedule({"type": "cosine"}, 10)


def test_schedules_module_imports_no_tensorflow():
    code = "import sys, deeph_tf.train.schedules; assert 'tensorflow' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
