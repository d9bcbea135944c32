"""Executors: where a study's units of work train (dqn.store.units).

The plan (dqn.run.plan) decides which units are unfinished and the runner (dqn.run.runner)
writes each finished unit's results on the driver; an executor only trains units and hands each
result back as it arrives.

- `LocalExecutor` (default, here) trains the units one after another in this process. An
  exception propagates: what finished is already written, and re-running the same command
  resumes.
- `RayExecutor` (dqn.run.ray_executor) submits every unit as a Ray task on a cluster.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tqdm import tqdm

import dqn.core.train  # looked up at call time (dqn.core.train.train), so tests can patch it
from dqn.base.config import Config
from dqn.base.provenance import versions
from dqn.core.device import cpu_numerics, resolve_device
from dqn.core.records import Records
from dqn.store.units import Unit, UnitResult


class ExecutorError(ValueError):
    """An impossible executor request (unknown name, missing Ray, unreachable cluster)."""


class UnitsFailed(RuntimeError):
    """Some units still failed after their retries; every other unit's results are written."""

    def __init__(self, failures: list[Failure]) -> None:
        self.failures = failures
        lines = [f"  {f.unit.name}: {f.error}" for f in failures]
        super().__init__(f"{len(failures)} unit(s) failed, their results are missing "
                         "(re-run the same command to retry just these):\n" + "\n".join(lines))


@dataclass(frozen=True)
class Failure:
    """A unit that failed for good, and why (the last error, one line)."""

    unit: Unit
    error: str


OnDone = Callable[[Unit, UnitResult], None]
TrainFn = Callable[..., Records]


class Executor(Protocol):
    """Trains units and calls `on_done` on the driver for each finished one."""

    name: str

    def run(self, units: Sequence[Unit], on_done: OnDone, *, label: str,
            progress: bool) -> list[Failure]:
        """Train `units`; return the ones that failed for good (local: raises instead)."""
        ...


def train_unit(config: Config, seeds: Sequence[int], train_fn: TrainFn | None = None,
               progress: Callable[[int, dict[str, float]], None] | None = None) -> UnitResult:
    """Train one unit in this process (the driver, or a Ray worker) and describe where."""
    fn = train_fn if train_fn is not None else dqn.core.train.train
    records = (fn(config, list(seeds), progress=progress) if progress is not None
               else fn(config, list(seeds)))
    device = resolve_device(config.device)
    return UnitResult(records=records, device=str(device), host=socket.gethostname(),
                      versions=versions(),
                      cpu_numerics=cpu_numerics() if device.type == "cpu" else None)


# local ---------------------------------------------------------------------------------------
class LocalExecutor:
    """Units one after another in this process, a progress bar over each unit's env steps."""

    name = "local"

    def run(self, units: Sequence[Unit], on_done: OnDone, *, label: str,
            progress: bool) -> list[Failure]:
        # one unit: its own bar says it all; more: a study bar above the unit's bar
        study = _StudyBar(label, units, progress and len(units) > 1)
        with study:
            for i, unit in enumerate(units):
                study.starting(i)
                desc = f"{label}/{unit.variant}" if unit.chunks == 1 else f"{label}/{unit.name}"
                with _StepBar(desc, unit.config, len(unit.seeds), progress,
                              study=study if study.enabled else None) as report:
                    result = train_unit(unit.config, unit.seeds, progress=report)
                study.finished(i)
                on_done(unit, result)
        return []


def seed_steps_per_s(step: int, seeds: int, start: float, now: float | None = None) -> float:
    """Seed-steps per second since `start` (perf_counter seconds): the average over the unit so
    far, as its final record reports it (tqdm's own rate is a smoothed recent one, None before
    its first refresh)."""
    elapsed = (time.perf_counter() if now is None else now) - start
    return seeds * step / elapsed if elapsed > 0 else 0.0


def study_position(units: Sequence[Unit], i: int, done: int) -> str:
    """Where a run stands while (or after) training unit `i` with `done` units finished, for
    the study bar: 'variant 2/5 batchnorm, units 3/10 done'. Variants are counted in the
    order the run first trains them."""
    variants = list(dict.fromkeys(u.variant for u in units))
    variant = units[i].variant
    return (f"variant {variants.index(variant) + 1}/{len(variants)} {variant}, "
            f"units {done}/{len(units)} done")


class _StudyBar:
    """The run's bar over every unit's seed-steps (S x env steps), so its ETA weighs units by
    their work; the postfix says which variant of how many is training and how many units
    are done."""

    def __init__(self, label: str, units: Sequence[Unit], enabled: bool) -> None:
        self.label, self.units, self.enabled = label, units, enabled
        self.work = [len(u.seeds) * u.config.total_steps for u in units]

    def __enter__(self) -> _StudyBar:
        self.bar = tqdm(total=sum(self.work), desc=f"{self.label} (all units)",
                        unit="seed-step", unit_scale=True, disable=not self.enabled,
                        dynamic_ncols=True, mininterval=1.0, position=0)
        return self

    def starting(self, i: int) -> None:
        self.bar.set_postfix_str(study_position(self.units, i, i), refresh=False)

    def advance(self, seed_steps: int) -> None:
        self.bar.update(seed_steps)

    def finished(self, i: int) -> None:
        # a unit's step reports need not end exactly at total_steps: settle its share
        self.bar.update(sum(self.work[:i + 1]) - self.bar.n)
        self.bar.set_postfix_str(study_position(self.units, i, i + 1), refresh=False)

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


class _StepBar:
    """A tqdm bar per unit: env steps, seed-steps per second, mean recent return. Under a
    study bar it sits on the second line and is cleared when the unit ends (the unit's
    one-line report replaces it)."""

    def __init__(self, desc: str, config: Config, S: int, enabled: bool,
                 study: _StudyBar | None = None) -> None:
        self.desc, self.config, self.S, self.enabled = desc, config, S, enabled
        self.study = study

    def __enter__(self) -> Callable[[int, dict[str, float]], None]:
        nested = {} if self.study is None else {"position": 1, "leave": False}
        self.bar = tqdm(total=self.config.total_steps, desc=self.desc, unit="step",
                        disable=not self.enabled, dynamic_ncols=True, mininterval=1.0,
                        **nested)
        self.start = time.perf_counter()
        return self.report

    def report(self, step: int, recent: dict[str, float]) -> None:
        if self.study is not None:
            self.study.advance(self.S * (step - self.bar.n))
        self.bar.update(step - self.bar.n)
        post = {"seed-steps/s": f"{seed_steps_per_s(step, self.S, self.start):,.0f}",
                "return": f"{recent['return']:.1f}"}
        if "eval" in recent:
            post["eval"] = f"{recent['eval']:.1f}"
        self.bar.set_postfix(post, refresh=False)

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
