"""Weight sharing: the pool, the WeightSharing evaluator, persistence, flows, nesting, errors."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch
from torch import nn

import symbolic_nas as sn
from symbolic_nas import algorithms, spaces
from symbolic_nas.space.pool import ParameterPool, shares_modules
from symbolic_nas.storage.journal import JournalStorage
from tests.helpers import weight_sharing as h

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _codec() -> sn.Codec:
    return sn.encode(h.space())


# ---------------------------------------------------------------------- the pool


def test_children_share_a_common_module_and_not_a_changed_one():
    codec, pool = _codec(), ParameterPool()
    a = pool.build(codec, [1, 0, 0]).model  # kernel 3, width 4, relu
    b = pool.build(codec, [1, 0, 1]).model  # only the activation differs
    c = pool.build(codec, [0, 0, 0]).model  # kernel 1: another conv shape
    assert a.stem.weight is b.stem.weight is c.stem.weight  # same path, class and shapes
    assert a.conv.weight is b.conv.weight and a.head.weight is b.head.weight
    assert c.conv.weight is not a.conv.weight  # a changed module gets its own tensor
    assert c.conv.weight.shape != a.conv.weight.shape
    assert c.conv.bias is not a.conv.bias  # the whole module is keyed, bias included
    with torch.no_grad():
        a.stem.weight.add_(1.0)  # training one child trains the other's common module
    assert torch.equal(b.stem.weight, a.stem.weight)
    assert pool.num_modules == 5  # stem, conv 3x3, bn, head, then conv 1x1


def test_pool_keys_name_path_class_and_shapes():
    codec, pool = _codec(), ParameterPool()
    pool.build(codec, [1, 0, 0])
    assert "conv|torch.nn.modules.conv.Conv2d|weight=4x4x3x3,bias=4" in pool.module_keys()
    assert "bn|torch.nn.modules.batchnorm.BatchNorm2d|weight=4,bias=4" in pool.module_keys()
    assert not any("running_mean" in key for key in pool.module_keys())  # never shared


def test_children_are_built_on_meta_once_the_pool_has_their_modules():
    codec, pool = _codec(), ParameterPool()
    first = pool.build(codec, [1, 1, 0])
    assert not first.meta and len(first.new) == 4 and first.shared == []
    again = pool.build(codec, [1, 1, 1])
    assert again.meta and again.new == [] and len(again.shared) == 4
    assert again.model.built_on == "meta"  # the constructor allocated nothing real
    tensors = [*again.model.parameters(), *again.model.buffers()]
    assert all(t.device.type == "cpu" for t in tensors)  # every meta tensor was replaced
    ids = {id(p) for p in pool.parameters()}
    assert all(id(p) in ids for p in again.model.parameters())


def test_new_modules_start_as_a_stand_alone_build_under_the_same_seed():
    codec, pool = _codec(), ParameterPool()
    torch.manual_seed(3)
    built = pool.build(codec, [1, 1, 0]).model
    torch.manual_seed(3)
    alone = codec.materialize([1, 1, 0])
    assert torch.equal(built.conv.weight, alone.conv.weight)


def test_annotated_spaces_seed_the_pool_with_the_base_model_weights():
    base = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))
    space = sn.annotate(base, {nn.ReLU: [sn.keep, nn.Tanh]})
    codec, pool = sn.encode(space), ParameterPool()
    first = pool.build(codec, [1]).model
    assert torch.equal(first[0].weight, base[0].weight)  # kept modules: the base's weights
    assert first[0].weight is not base[0].weight  # copied, the base model is untouched
    second = pool.build(codec, [0])
    assert second.meta and second.model[3].weight is first[3].weight


@pytest.mark.parametrize("name", spaces.available())
def test_every_registered_space_builds_from_a_pool(name):
    space, example = spaces.get(name), spaces.example(name)
    codec, pool = sn.encode(space), ParameterPool()
    import random

    rng = random.Random(0)
    children = [codec.random_tokens(rng) for _ in range(3)]
    for tokens in children + children:
        model = pool.build(codec, tokens).model.eval()
        with torch.no_grad():
            out = model(*example.inputs)
        assert out is not None
    assert pool.build(codec, children[0]).meta
    assert shares_modules(codec)


def test_batch_norm_statistics_are_fresh_or_off():
    codec, pool = _codec(), ParameterPool()
    a = pool.build(codec, [1, 0, 0], batch_norm="recalibrate").model
    b = pool.build(codec, [1, 0, 0], batch_norm="recalibrate").model
    assert a.bn.weight is b.bn.weight and a.bn.running_mean is not b.bn.running_mean
    assert torch.equal(a.bn.running_var, torch.ones(4))
    c = pool.build(codec, [1, 0, 0], batch_norm="batch_stats").model
    assert c.bn.running_mean is None and not c.bn.track_running_stats


def test_pool_materialize_copies_and_save_load_round_trip(tmp_path):
    codec, pool = _codec(), ParameterPool()
    shared = pool.build(codec, [1, 0, 0]).model
    plain = pool.materialize(h.space(), [1, 0, 0])
    assert torch.equal(plain.conv.weight, shared.conv.weight)
    assert plain.conv.weight is not shared.conv.weight
    before = pool.num_modules
    pool.materialize(h.space(), [0, 1, 0])  # modules the pool lacks do not join it
    assert pool.num_modules == before
    pool.save(tmp_path / "pool.pt")
    loaded = ParameterPool.load(tmp_path / "pool.pt")
    assert loaded.module_keys() == pool.module_keys() and loaded.fingerprint == pool.fingerprint
    again = loaded.build(codec, [1, 0, 0]).model
    assert torch.equal(again.conv.weight, shared.conv.weight)
    state = torch.load(tmp_path / "pool.pt", weights_only=True)  # plain tensors and values
    assert state["format"] == 1


# ---------------------------------------------------------------------- the evaluator


def test_a_trial_trains_the_pool_and_new_parameters_join_the_optimizer():
    shared = sn.WeightSharing(h.trainer(), train_steps=4)
    shared.bind(h.space())
    first = shared([1, 0, 0])
    assert set(first) >= {"reward", "accuracy", "train_loss", "pool_parameters", "build_ms"}
    stem = shared.pool.build(shared.codec, [1, 0, 0]).model.stem.weight
    optimizer = shared.pool.optimizer
    assert any(p is stem for p in optimizer.param_groups[0]["params"])
    assert stem in optimizer.state  # momentum or step state kept for the pool
    shared([0, 1, 0])  # a new conv, bn and head join the pool and the optimizer
    params = shared.pool.parameters()
    assert len(optimizer.param_groups[0]["params"]) == len(params) > 4
    assert shared.pool.training["steps"] == 8


def test_train_steps_zero_scores_on_a_trained_pool_without_changing_it():
    shared = sn.WeightSharing(h.trainer(), train_steps=5)
    result = sn.search(h.space(), shared, algorithm="random", num_trials=6, seed=0,
                       progress=False)  # fmt: skip
    entries = shared.pool.state_dict()["entries"]
    before = {k: e["weight"]["tensor"].clone() for k, e in entries.items() if "weight" in e}
    scorer = sn.WeightSharing(h.trainer(), train_steps=0, pool=shared.pool)
    scored = sn.search(h.space(), scorer, algorithm="evolution", num_trials=4, seed=1,
                       progress=False)  # fmt: skip
    after = shared.pool.state_dict()["entries"]
    assert all(torch.equal(before[k], after[k]["weight"]["tensor"]) for k in before)
    assert len(scored.completed) == 4 and "train_loss" not in scored.trials[0].metrics
    assert result.best is not None


def test_evaluator_materializes_a_finalist_with_its_shared_weights():
    shared = sn.WeightSharing(h.trainer(), train_steps=3)
    result = sn.search(h.space(), shared, algorithm="random", num_trials=4, seed=0,
                       progress=False)  # fmt: skip
    best = result.best.tokens
    model = shared.materialize(best)
    pooled = shared.pool.build(shared.codec, best).model
    assert torch.equal(model.conv.weight, pooled.conv.weight)
    assert model.conv.weight is not pooled.conv.weight
    assert model.bn.num_batches_tracked.item() > 0  # recalibrated
    assert sn.Trainer(data=h.data, epochs=1, batch_size=16)(model)["accuracy"] > 0  # fine-tunes


def test_evaluator_state_round_trips_through_weights_only_files(tmp_path):
    shared = sn.WeightSharing(h.trainer(), train_steps=3)
    shared.bind(h.space())
    shared([1, 0, 0])
    shared.save(str(tmp_path / "pool.pt"))
    other = sn.WeightSharing(h.trainer(), train_steps=3)
    other.load(str(tmp_path / "pool.pt"))
    other.bind(h.space())
    assert other.pool.module_keys() == shared.pool.module_keys()
    other([1, 0, 0])  # the optimizer state is restored, then steps on
    assert other.pool.training["steps"] == 6
    assert len(other.pool.optimizer.state) == len(shared.pool.optimizer.state)


# ---------------------------------------------------------------------- runs


def _ends(run_dir: pathlib.Path) -> list[dict]:
    path = run_dir / "journal.jsonl"
    records = JournalStorage(path).read() if path.exists() else []
    return [r for r in records if r.get("event") == "end"]


def test_the_pool_is_saved_with_the_run_and_logged_to_tensorboard(tmp_path):
    shared = sn.WeightSharing(h.trainer(), train_steps=2)
    sn.search(h.space(), shared, algorithm="random", num_trials=3, seed=0,
              run_dir=str(tmp_path / "run"), progress=False)  # fmt: skip
    payload = torch.load(tmp_path / "run" / "evaluator.pt", weights_only=True)
    assert payload["evaluator"]["training"]["steps"] == 6
    events = b"".join(p.read_bytes() for p in (tmp_path / "run" / "tensorboard").glob("events*"))
    assert b"evaluator/pool_train_loss" in events and b"evaluator/pool_parameters" in events
    config = (tmp_path / "run" / "config.json").read_text()
    assert '"evaluation": "shared_weights"' in config


def test_report_tells_shared_weights_from_stand_alone(tmp_path):
    from symbolic_nas.cli_report import format_report

    sn.search(h.space(), sn.WeightSharing(h.trainer(), train_steps=1), algorithm="random",
              num_trials=2, run_dir=str(tmp_path / "shared"), progress=False)  # fmt: skip
    sn.search(h.space(), h.trainer(epochs=1), algorithm="random", num_trials=2,
              run_dir=str(tmp_path / "alone"), progress=False)  # fmt: skip
    shared = format_report(str(tmp_path / "shared"))
    alone = format_report(str(tmp_path / "alone"))
    assert "evaluation: shared weights" in shared and "parameters in" in shared
    assert "evaluation: stand-alone" in alone


@pytest.mark.slow  # starts and SIGKILLs a driver, then resumes it: ~10 s
def test_a_sigkilled_shared_weight_search_resumes_with_its_pool(tmp_path):
    run_dir, total = tmp_path / "run", 40
    process = subprocess.Popen(
        [sys.executable, "-m", h.__name__, str(run_dir), str(total)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(_ends(run_dir)) < 6:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = len(_ends(run_dir))
    saved = torch.load(run_dir / "evaluator.pt", weights_only=True)["evaluator"]
    assert saved["training"]["steps"] > 0
    shared = sn.WeightSharing(h.trainer(), train_steps=3)
    result = sn.search(h.space(), shared, algorithm="random", num_trials=total, seed=0,
                       run_dir=str(run_dir), resume=True, tensorboard=False,
                       progress=False)  # fmt: skip
    assert len(result.completed) == total
    assert shared.pool.training["steps"] >= saved["training"]["steps"] + 3 * (total - killed_at)
    assert shared.pool.training["trials"] >= saved["training"]["trials"]


def test_two_stage_flow_top_and_fixed(tmp_path):
    shared = sn.WeightSharing(h.trainer(), train_steps=2)
    first = sn.search(h.space(), shared, algorithm="reinforce", num_trials=12, seed=0,
                      run_dir=str(tmp_path / "ws"), progress=False)  # fmt: skip
    finalists = first.top(3, distinct=True)
    assert len({tuple(t.tokens) for t in finalists}) == len(finalists) == 3
    assert [t.reward for t in finalists] == sorted((t.reward for t in finalists), reverse=True)
    final = sn.search(
        h.space(), h.trainer(epochs=1),
        algorithm=algorithms.get("fixed", tokens=[t.tokens for t in finalists]),
        num_trials=3, run_dir=str(tmp_path / "final"), progress=False,
    )  # fmt: skip
    assert [t.tokens for t in final.trials] == [t.tokens for t in finalists]


def test_nested_searches_each_with_its_run_dir_and_tensorboard(tmp_path):
    def inner(hparams: dict) -> float:
        steps = hparams["train_steps"]
        shared = sn.WeightSharing(h.trainer(), train_steps=steps)
        result = sn.search(h.space(), shared, algorithm="random", num_trials=3, seed=0,
                           run_dir=str(tmp_path / f"inner-{steps}"), progress=False)  # fmt: skip
        return result.best.reward

    outer = sn.search({"train_steps": sn.oneof([1, 2])}, inner, num_trials=2,
                      algorithm=algorithms.get("fixed", tokens=[[0], [1]]),
                      run_dir=str(tmp_path / "outer"), progress=False)  # fmt: skip
    assert len(outer.completed) == 2, [t.error for t in outer.trials]
    for name in ("outer", "inner-1", "inner-2"):
        assert (tmp_path / name / "journal.jsonl").exists()
        assert list((tmp_path / name / "tensorboard").glob("events*")), name


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("options", "rule"),
    [({"workers": 2}, "workers=2"), ({"executor": "ray"}, "executor='ray'"),
     ({"executor": "process", "workers": 1}, "executor='process'")],
)  # fmt: skip
def test_more_than_one_process_is_refused_with_the_rule(options, rule, tmp_path):
    shared = sn.WeightSharing(h.trainer(), train_steps=1)
    with pytest.raises(ValueError, match=r"shared weights need one process") as e:
        sn.search(h.space(), shared, num_trials=2, run_dir=str(tmp_path / "r"), **options)
    assert rule in str(e.value) and not (tmp_path / "r").exists()


def test_a_pool_used_with_another_space_is_refused():
    shared = sn.WeightSharing(h.trainer(), train_steps=1)
    sn.search(h.space(), shared, num_trials=1, progress=False)
    other = h.SharedNet(sn.oneof([1, 3, 5]), 4)
    with pytest.raises(ValueError, match=r"`space` must be the space this pool was built for"):
        sn.search(other, shared, num_trials=1, progress=False)


def test_a_space_whose_children_share_nothing_warns_and_still_works():
    Seq = sn.symbolize(nn.Sequential)
    space = sn.oneof([
        Seq(nn.Flatten(), nn.Linear(64, 2)),
        Seq(nn.Conv2d(1, 2, 8), nn.Flatten()),
    ])  # fmt: skip
    shared = sn.WeightSharing(h.trainer(), train_steps=1)
    with pytest.warns(UserWarning, match=r"share no module .* shares nothing"):
        result = sn.search(space, shared, num_trials=3, progress=False)
    assert len(result.completed) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_steps": -1}, r"`train_steps` must be an int >= 0, but got -1"),
        ({"eval_batches": 0}, r"`eval_batches` must be"),
        ({"batch_norm": "ghost"}, r"`batch_norm` must be"),
    ],
)
def test_bad_settings_name_the_rule(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sn.WeightSharing(h.trainer(), **kwargs)


def test_an_evaluator_that_is_not_a_trainer_is_refused():
    with pytest.raises(ValueError, match=r"`trainer` must be an sn.Trainer, but got"):
        sn.WeightSharing(lambda model: 1.0)  # type: ignore[arg-type]


def test_dict_children_with_training_hyperparameters_are_refused():
    shared = sn.WeightSharing(h.trainer(), train_steps=1)
    result = sn.search({"model": h.space(), "lr": sn.oneof([0.1, 0.01])}, shared,
                       num_trials=1, progress=False, max_consecutive_failures=None)  # fmt: skip
    assert "training hyperparameters cannot change per child" in result.trials[0].error


def test_fixed_validates_its_tokens_and_then_proposes_at_random():
    codec = _codec()
    algo = algorithms.get("fixed", tokens=[[1, 0, 0], [0, 1, 1]], seed=0)
    algo.setup(codec)
    assert [algo.propose().tokens for _ in range(2)] == [[1, 0, 0], [0, 1, 1]]
    codec.validate(algo.propose().tokens)
    state = algo.state_dict()
    clone = algorithms.get("fixed", tokens=[[1, 0, 0], [0, 1, 1]], seed=0)
    clone.setup(codec)
    clone.load_state_dict(state)
    assert clone.propose().tokens == algo.propose().tokens
    bad = algorithms.get("fixed", tokens=[[1, 0, 5]])
    with pytest.raises(ValueError, match=r"`tokens\[0\]` must be a valid token sequence"):
        bad.setup(codec)
    with pytest.raises(ValueError, match=r"`tokens` must be a list of token lists"):
        algorithms.get("fixed", tokens=[1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        algorithms.get("fixed")  # the default (no list) is valid


def test_data_that_is_not_in_memory_is_refused():
    from torch.utils.data import TensorDataset

    def datasets():
        (x, y), (vx, vy), _ = h.data()
        return TensorDataset(x, y), TensorDataset(vx, vy)

    shared = sn.WeightSharing(sn.Trainer(data=datasets), train_steps=1)
    with pytest.raises(ValueError, match=r"`trainer` must hold its training and validation"):
        shared.bind(h.space())
