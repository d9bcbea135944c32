"""Executors: where a study's units of work train.

A unit is one (variant, seed chunk): `dqn.train.train(config, chunk_seeds)`, all of the chunk's
seeds batched on one device. The study runner (dqn.study.run) decides which units are
unfinished and writes each finished unit's results on the driver; an executor only trains
units and hands each result back as it arrives.

- `LocalExecutor` (default) trains the units one after another in this process. It never
  imports ray. An exception propagates, as it always has: what finished is already written,
  and re-running the same command resumes.
- `RayExecutor` submits every unit as a Ray task, retries a failed unit (exception or dead
  worker) up to `max_retries` times, reports the units that still failed by name, and on
  Ctrl-C cancels the outstanding tasks. Ray is an optional dependency (`pip install -e
  '.[ray]'`), imported only here and only when this executor is created.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dqn.config import Config, is_positive_int

if TYPE_CHECKING:
    from dqn.records import Records

EXECUTORS = ("local", "ray")
DEFAULT_MAX_RETRIES = 2
DEFAULT_GPUS_PER_UNIT = 0.25
RAY_INSTALL_HINT = ("install it with `.venv/bin/pip install -e '.[ray]'` "
                    "(`make study ... EXECUTOR=ray` does this for you)")


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
class Unit:
    """One variant's chunk of seeds: the smallest piece of a study that trains on its own."""

    variant: str
    config: Config
    seeds: tuple[int, ...]
    index: int  # 0-based chunk number within the variant
    chunks: int  # how many chunks the variant has

    @property
    def name(self) -> str:
        """`variant[seeds 0-9]`: how logs and failure reports name the unit."""
        return f"{self.variant}[seeds {seeds_label(self.seeds)}]"


@dataclass
class UnitResult:
    """What training one unit produced, plus where and with what software it ran."""

    records: Records
    device: str
    host: str
    versions: dict[str, str]


@dataclass(frozen=True)
class Failure:
    """A unit that failed for good, and why (the last error, one line)."""

    unit: Unit
    error: str


OnDone = Callable[[Unit, UnitResult], None]
TrainFn = Callable[..., "Records"]


class Executor(Protocol):
    """Trains units and calls `on_done` on the driver for each finished one."""

    name: str

    def run(self, units: Sequence[Unit], on_done: OnDone, *, label: str,
            progress: bool) -> list[Failure]:
        """Train `units`; return the ones that failed for good (local: raises instead)."""
        ...


def seeds_label(seeds: Sequence[int]) -> str:
    """'3', '0-9' for a contiguous run, else a comma-separated list."""
    seeds = list(seeds)
    if len(seeds) == 1:
        return str(seeds[0])
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def split_seeds(seeds: Sequence[int], chunk: int | None) -> list[tuple[int, ...]]:
    """Consecutive chunks of at most `chunk` seeds (None: one chunk holding every seed)."""
    if chunk is not None and not is_positive_int(chunk):
        raise ValueError(f"seed_chunk: {chunk!r} must be a positive integer")
    size = len(seeds) if chunk is None else chunk
    return [tuple(seeds[i:i + size]) for i in range(0, len(seeds), size)]


def train_unit(config: Config, seeds: Sequence[int], train_fn: TrainFn | None = None,
               progress: Callable[[int, dict[str, float]], None] | None = None) -> UnitResult:
    """Train one unit in this process (the driver, or a Ray worker) and describe where."""
    import dqn.train  # looked up at call time so tests can patch dqn.train.train
    from dqn.study import versions

    fn = train_fn if train_fn is not None else dqn.train.train
    records = (fn(config, list(seeds), progress=progress) if progress is not None
               else fn(config, list(seeds)))
    return UnitResult(records=records, device=str(dqn.train.resolve_device(config.device)),
                      host=socket.gethostname(), versions=versions())


def make_executor(name: str = "local", *, address: str | None = None,
                  max_retries: int = DEFAULT_MAX_RETRIES,
                  gpus_per_unit: float = DEFAULT_GPUS_PER_UNIT) -> Executor:
    """The executor called `name`, its options checked; raises ExecutorError naming the bad one.

    Ray-only options given with the local executor are an error rather than silently ignored.
    """
    if name not in EXECUTORS:
        raise ExecutorError(f"unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")
    if name == "local":
        if address is not None:
            raise ExecutorError(f"--address {address!r} needs --executor ray "
                                "(the local executor trains in this process)")
        return LocalExecutor()
    return RayExecutor(address=address, max_retries=max_retries, gpus_per_unit=gpus_per_unit)


# local ---------------------------------------------------------------------------------------
class LocalExecutor:
    """Units one after another in this process, a progress bar over each unit's env steps."""

    name = "local"

    def run(self, units: Sequence[Unit], on_done: OnDone, *, label: str,
            progress: bool) -> list[Failure]:
        for unit in units:
            desc = f"{label}/{unit.variant}" if unit.chunks == 1 else f"{label}/{unit.name}"
            with _StepBar(desc, unit.config, len(unit.seeds), progress) as report:
                result = train_unit(unit.config, unit.seeds, progress=report)
            on_done(unit, result)
        return []


class _StepBar:
    """A tqdm bar per unit: env steps, seed-steps per second, mean recent return."""

    def __init__(self, desc: str, config: Config, S: int, enabled: bool) -> None:
        self.desc, self.config, self.S, self.enabled = desc, config, S, enabled

    def __enter__(self) -> Callable[[int, dict[str, float]], None]:
        from tqdm import tqdm

        self.bar = tqdm(total=self.config.total_steps, desc=self.desc, unit="step",
                        disable=not self.enabled, dynamic_ncols=True, mininterval=1.0)
        return self.report

    def report(self, step: int, recent: dict[str, float]) -> None:
        self.bar.update(step - self.bar.n)
        rate = self.bar.format_dict.get("rate") or 0.0
        post = {"seed-steps/s": f"{rate * self.S:,.0f}", "return": f"{recent['return']:.1f}"}
        if "eval" in recent:
            post["eval"] = f"{recent['eval']:.1f}"
        self.bar.set_postfix(post, refresh=False)

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


# ray -----------------------------------------------------------------------------------------
def _import_ray() -> Any:
    """The real ray package, or an ExecutorError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"the ray executor needs Ray, which is not installed: "
                            f"{RAY_INSTALL_HINT}") from None
    # a directory called ray/ on sys.path (tests/ray/) imports as an empty namespace package
    if not hasattr(ray, "remote"):
        raise ExecutorError(f"the ray executor needs Ray, but `import ray` found "
                            f"{list(getattr(ray, '__path__', []))} instead: {RAY_INSTALL_HINT}")
    return ray


def _ray_train_unit(config: Config, seeds: tuple[int, ...],
                    train_fn: TrainFn | None) -> UnitResult:
    """The Ray task body: one unit on whatever device Ray gave this worker."""
    return train_unit(config, seeds, train_fn)


class RayExecutor:
    """Every unit as a Ray task; results come back to the driver, which writes them.

    address: a running cluster ('HOST:PORT' of the head, as `ray start --head` prints); None
    connects to $RAY_ADDRESS or a cluster started on this machine, else starts a private one.
    max_retries: extra attempts for a unit whose task raised or whose worker died.
    gpus_per_unit: the GPU fraction each unit requests when the cluster has GPUs (and the
    variant's device is not 'cpu'); several small seed batches share a GPU well.
    train_fn: replaces dqn.train.train on the workers (tests inject failures with it); it is
    pickled to the workers, so it must be importable there or registered by value.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, max_retries: int = DEFAULT_MAX_RETRIES,
                 gpus_per_unit: float = DEFAULT_GPUS_PER_UNIT,
                 train_fn: TrainFn | None = None) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ExecutorError(f"max_retries: {max_retries!r} must be an integer >= 0")
        if not isinstance(gpus_per_unit, int | float) or not 0 < gpus_per_unit <= 1:
            raise ExecutorError(f"gpus_per_unit: {gpus_per_unit!r} must be in (0, 1]: a unit "
                                "trains on one device")
        self.ray = _import_ray()  # before anything trains: a missing Ray fails the command
        self.address, self.max_retries = address, max_retries
        self.gpus_per_unit, self.train_fn = gpus_per_unit, train_fn

    def run(self, units: Sequence[Unit], on_done: OnDone, *, label: str,
            progress: bool) -> list[Failure]:
        ray = self.ray
        started = not ray.is_initialized()
        if started:
            if self.address:
                _check_reachable(self.address)
            try:
                # Ray's INFO banner is noise next to the progress bar
                ray.init(address=self.address, include_dashboard=False, logging_level="WARNING")
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ExecutorError(f"could not connect to the Ray cluster at "
                                    f"{self.address or '(auto)'}: {e}") from None
        try:
            return self._run(ray, units, on_done, label, progress)
        finally:
            if started:
                ray.shutdown()

    def _options(self, unit: Unit, gpus: float) -> dict[str, Any]:
        """Resources and retry policy of one unit's task on a cluster with `gpus` GPUs."""
        wants = unit.config.device
        if wants.startswith("cuda") and not gpus:
            raise ExecutorError(f"variant {unit.variant!r} asks for device {wants!r}, but the "
                                "Ray cluster has no GPUs (use device 'auto' or 'cpu')")
        # one CPU: train() runs one torch thread (see dqn.train.set_cpu_threads)
        opts: dict[str, Any] = {"num_cpus": 1, "max_retries": self.max_retries,
                                "retry_exceptions": True, "name": unit.name}
        if gpus and wants != "cpu":
            opts["num_gpus"] = self.gpus_per_unit
        return opts

    def _run(self, ray: Any, units: Sequence[Unit], on_done: OnDone, label: str,
             progress: bool) -> list[Failure]:
        from tqdm import tqdm

        # Unpickling a result imports dqn.records and so torch; doing that inside the first
        # ray.get took seconds and a Ctrl-C landing in it left torch half-imported, which
        # lost the finished units. Import it here, before anything is submitted.
        import dqn.records  # noqa: F401

        remote = ray.remote(_ray_train_unit)
        gpus = ray.cluster_resources().get("GPU", 0)
        options = [self._options(u, gpus) for u in units]  # every check before any submission
        pending = {remote.options(**opts).remote(u.config, u.seeds, self.train_fn): u
                   for u, opts in zip(units, options, strict=True)}
        failures: list[Failure] = []
        bar = tqdm(total=len(units), desc=f"{label} ({len(units)} units on Ray)", unit="unit",
                   disable=not progress, dynamic_ncols=True, file=sys.stderr)

        def collect(refs: list[Any]) -> None:
            for ref in refs:
                unit = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as e:
                    failures.append(Failure(unit, _one_line(e)))
                    bar.write(f"[{label}] {unit.name}: FAILED after {self.max_retries} "
                              f"retries: {_one_line(e)}")
                else:
                    on_done(unit, result)
                bar.update(1)

        try:
            while pending:
                # a bounded wait keeps the driver responsive to Ctrl-C
                done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                collect(done)
        except KeyboardInterrupt:
            # keep what already finished, cancel the rest; force kills running workers
            try:
                done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
                collect([r for r in done if _succeeded(ray, r)])
            except Exception as e:  # noqa: BLE001 -- still cancel; a re-run retrains these
                bar.write(f"[{label}] could not save the units that had just finished: {e}")
            finally:
                for ref in pending:
                    ray.cancel(ref, force=True)
                bar.write(f"[{label}] interrupted: cancelled {len(pending)} outstanding "
                          "unit(s); finished units are saved")
            raise
        finally:
            bar.close()
        return failures


def _succeeded(ray: Any, ref: Any) -> bool:
    try:
        ray.get(ref, timeout=0)
        return True
    except Exception:  # noqa: BLE001 -- any failure means "not a result to keep"
        return False


def _one_line(error: BaseException) -> str:
    """The last line of a (possibly remote, multi-line) error: its type and message."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}".splitlines()[0]
    lines = [ln for ln in str(error).strip().splitlines() if ln.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}"


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, naming the address, when no Ray head answers there (ray.init retries for
    minutes). Ray dials 127.0.0.1/localhost as this machine's network address, so that is the
    address checked, and the message says so when only the loopback one answers."""
    from ray._private.services import canonicalize_bootstrap_address  # what ray.init dials

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--address {address!r} must be HOST:PORT of a Ray head "
                            "(as printed by `ray start --head`)")
    dialed = canonicalize_bootstrap_address(address) or address
    if _connects(dialed, timeout_s):
        return
    hint = ""
    if dialed != address and _connects(address, timeout_s):
        hint = (f"; Ray rewrites {host} to this machine's address {dialed.rpartition(':')[0]}, "
                "where the head does not listen: start it without --node-ip-address, or on a "
                "loopback address other than 127.0.0.1 (e.g. 127.0.0.2) and use that here")
    raise ExecutorError(f"no Ray cluster answers at {address} (dialed {dialed}){hint}. "
                        "Start one with `ray start --head` and pass the address it prints.")


def _connects(address: str, timeout_s: float) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False
