"""Golden runs: one short training per main code path the fast learning tier does not train
(tests/golden/golden.toml: BatchNorm through autograd, n-step, prioritized replay, noisy nets,
double DQN, each target rule, loss, optimizer, head, schedule and environment), each compared
bit for bit with its committed records in tests/golden/results (dqn.store.reproduce).

CPU training is deterministic and a seed's numbers depend on that seed alone, so any change to
what training computes fails here with the first differing row. Where this machine's CPU
numerics differ from those that made the committed records (dqn.core.device.cpu_numerics), a
bit-for-bit comparison is impossible and the test is skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dqn.run import runner, studyfile
from dqn.store.reproduce import compare

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
STUDY = GOLDEN / "golden.toml"
COMMITTED = GOLDEN / "results" / "golden"
VARIANTS = list(studyfile.load(STUDY).variants)


def reproduces(fresh: Path, committed: Path) -> None:
    """Fail on any difference from the committed rows; skip (saying why) when nothing could
    be compared bit for bit on this machine; pass only when something was compared."""
    found = compare(fresh, committed)
    assert not found.failures, "\n".join(found.failures)
    if not found.compared:
        if found.skipped:
            pytest.skip("; ".join(found.skipped))
        pytest.fail(f"nothing in {fresh} matched committed results in {committed} "
                    "(config, seeds and steps): the exact check compared nothing")


@pytest.mark.learning
@pytest.mark.parametrize("variant", VARIANTS)
def test_golden_run_reproduces_its_committed_records(variant: str, tmp_path: Path) -> None:
    runner.run(studyfile.load(STUDY), out_dir=tmp_path, variants=[variant], figures=False,
               progress=False)
    reproduces(tmp_path / "golden", COMMITTED)
