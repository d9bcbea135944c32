"""Final weights kept per unit (dqn.store.weights) and watching a seed play (dqn.run.play,
`play`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from study_fixtures import tiny_study_text

import dqn.core.train
from dqn.cli.main import main
from dqn.run import play, runner, studyfile
from dqn.store import weights

TINY = tiny_study_text("A tiny study for weights tests.", 3)


def run_tiny(tmp_path: Path, base: str = "", top: str = "") -> Path:
    """Train the tiny study (3 seeds, two variants) into tmp_path/r; `base` adds [base] keys."""
    text = TINY.replace("[base]\n", "[base]\n" + base)
    path = tmp_path / "tiny.toml"
    path.write_text(top + text)
    return runner.run(studyfile.load(path), out_dir=tmp_path / "r", figures=False,
                      progress=False)


def capture_agents(monkeypatch) -> list:
    """Every Agent that dqn.core.train builds, kept for the test to query after training."""
    agents = []

    class Kept(dqn.core.train.Agent):
        def __init__(self, *a, **k) -> None:
            super().__init__(*a, **k)
            agents.append(self)

    monkeypatch.setattr(dqn.core.train, "Agent", Kept)
    return agents


@pytest.mark.parametrize("base", ["dueling = false\n", "dueling = true\n",
                                  "batchnorm = true\n"], ids=["plain", "dueling", "batchnorm"])
def test_saved_weights_give_the_trained_agents_greedy_actions(tmp_path: Path, monkeypatch,
                                                              base: str) -> None:
    agents = capture_agents(monkeypatch)
    out = run_tiny(tmp_path, base)
    baseline = agents[0]  # units train in study-file order: the baseline first
    obs = torch.as_tensor(np.random.default_rng(0).normal(size=(3, 64, 4)),
                          dtype=torch.float32)  # (S, N, obs_dim), wider than CartPole visits
    trained = baseline.greedy(obs).numpy()  # (S, N)
    for seed in range(3):
        sw = weights.load(out, "baseline", seed)
        assert np.array_equal(play.greedy_actions(sw, obs[seed].numpy()), trained[seed])
    # enough different actions that the comparison means something
    assert 0 < trained.mean() < 1


def test_saved_weights_are_the_network_plain_torch_builds(tmp_path: Path) -> None:
    """Layer by layer from the documented layout (weights stored (in, out)), in torch.nn."""
    out = run_tiny(tmp_path, "dueling = false\nhidden = [8, 6]\n")
    sw = weights.load(out, "baseline", 2)
    p = torch.as_tensor(sw.params)
    sizes = [4, 8, 6, 2]
    layers, pos = [], 0
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        lin = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():
            lin.weight.copy_(p[pos:pos + n_in * n_out].view(n_in, n_out).T)
            lin.bias.copy_(p[pos + n_in * n_out:pos + n_in * n_out + n_out])
        pos += n_in * n_out + n_out
        layers += [lin] + ([torch.nn.ReLU()] if i < 2 else [])
    assert pos == p.numel()
    x = torch.as_tensor(np.random.default_rng(1).normal(size=(50, 4)), dtype=torch.float32)
    expected = torch.nn.Sequential(*layers)(x).argmax(dim=-1).numpy()
    assert np.array_equal(play.greedy_actions(sw, x.numpy()), expected)


def test_weights_stay_out_of_git_unless_the_study_asks(tmp_path: Path) -> None:
    out = run_tiny(tmp_path)
    ignore = out / "weights" / ".gitignore"
    assert ignore.read_text().splitlines()[-1] == "*"
    assert sorted(p.name for p in (out / "weights" / "baseline").iterdir()) == ["seeds-0-2.npz"]
    (tmp_path / "kept").mkdir()
    out = run_tiny(tmp_path / "kept", top="commit_weights = true\n")
    assert (out / "weights" / "baseline" / "seeds-0-2.npz").exists() and not (
        out / "weights" / ".gitignore").exists()


def test_bad_commit_weights_names_file_key_and_value(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text('commit_weights = "yes"\n' + TINY)
    with pytest.raises(studyfile.StudyError, match=r"tiny\.toml: key 'commit_weights': 'yes'"):
        studyfile.load(path)


def test_a_seed_retrained_in_another_unit_replaces_its_old_weights(tmp_path: Path) -> None:
    out = run_tiny(tmp_path)
    folder = out / "weights" / "baseline"
    old = weights.load(out, "baseline", 1)
    fake = type("W", (), {"spec": old.spec, "params": np.zeros((1, old.params.size)),
                          "stats": np.zeros((1, old.stats.size))})()
    run = json.loads((out / "run.json").read_text())
    weights.save(out, "baseline", [1], run["variants"]["baseline"]["config_hash"], fake)
    assert sorted(p.name for p in folder.iterdir()) == ["seeds-1.npz"]
    assert not weights.load(out, "baseline", 1).params.any()
    with pytest.raises(weights.WeightsError, match="has no weights for seed 0"):
        weights.load(out, "baseline", 0)


def test_weights_of_another_config_are_never_shown_as_this_runs(tmp_path: Path) -> None:
    out = run_tiny(tmp_path)
    run = json.loads((out / "run.json").read_text())
    run["variants"]["baseline"]["config_hash"] = "0" * 16  # as if retrained with another config
    (out / "run.json").write_text(json.dumps(run))
    with pytest.raises(weights.WeightsError, match="earlier run with another config"):
        weights.load(out, "baseline", 0)


@pytest.mark.parametrize("variant, seed, needle", [
    ("nope", 0, "no variant 'nope'; finished variants: baseline, no_target"),
    ("baseline", 7, "variant 'baseline' has no seed 7; its seeds: 0-2"),
])
def test_play_names_what_is_missing(tmp_path: Path, capsys, variant: str, seed: int,
                                    needle: str) -> None:
    run_tiny(tmp_path)
    code = main(["--results-dir", str(tmp_path / "r"), "play", "tiny", variant, str(seed)])
    assert code == 2 and needle in capsys.readouterr().err


def test_retraining_one_seed_alone_reproduces_its_weights(tmp_path: Path) -> None:
    """Seeds are independent: seed 1 trained alone gets the weights it got among 3 seeds."""
    out = run_tiny(tmp_path)
    batched = weights.load(out, "no_target", 1)
    shutil.rmtree(out / "weights")
    with pytest.raises(weights.WeightsError, match="--retrain"):
        weights.load(out, "no_target", 1)
    alone = play.retrain(out, "no_target", 1)
    assert np.array_equal(alone.params, batched.params)
    assert alone.path.name == "seeds-1.npz"


def test_retraining_refuses_a_seed_that_does_not_reproduce(tmp_path: Path) -> None:
    out = run_tiny(tmp_path)
    shutil.rmtree(out / "weights")
    evals = (out / "evals.csv").read_text().splitlines()
    row = next(i for i, line in enumerate(evals) if ",baseline,0," in line)
    cells = evals[row].split(",")
    ret = evals[0].split(",").index("return")
    cells[ret] = str(float(cells[ret]) + 1)
    evals[row] = ",".join(cells)
    (out / "evals.csv").write_text("\n".join(evals) + "\n")
    with pytest.raises(play.PlayError, match="does not reproduce its recorded evaluations"):
        play.retrain(out, "baseline", 0)
    assert not (out / "weights" / "baseline").exists()


def test_play_writes_a_gif_of_one_greedy_episode(tmp_path: Path, capsys) -> None:
    pytest.importorskip("pygame", reason="gymnasium's CartPole renders with pygame, which "
                                         "is not installed here")
    from PIL import Image

    run_tiny(tmp_path)
    capsys.readouterr()
    gif = tmp_path / "seed.gif"
    code = main(["--results-dir", str(tmp_path / "r"), "play", "tiny", "baseline", "2",
                 "--out", str(gif), "--every", "3"])
    assert code == 0
    said = capsys.readouterr().out
    steps = int(said.split(" in ")[1].split(" steps")[0])
    with Image.open(gif) as im:
        # the first frame, then every 3rd step's; CartPole pays 1 per step
        assert (im.n_frames, im.size) == (1 + steps // 3, (300, 200))
    assert f"return {steps} in {steps} steps" in said
