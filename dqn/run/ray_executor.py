"""The Ray executor: every unit of a study as a Ray task on a cluster.

It retries a failed unit (exception or dead worker) up to `max_retries` times, reports the
units that still failed by name, and on Ctrl-C cancels the outstanding tasks. Ray is an
optional dependency (`pip install -e '.[ray]'`): it is imported when this executor is created,
never at import time, so everything else runs without it.

Results come back to the driver, which writes them. Importing this module imports dqn.core.records
(through dqn.run.executors) and so torch: unpickling the first result would otherwise import torch
inside ray.get, where a Ctrl-C left it half-imported and lost the finished units.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from dqn.base.config import Config
from dqn.run.executors import ExecutorError, Failure, OnDone, TrainFn, train_unit
from dqn.store.units import Unit, UnitResult

DEFAULT_MAX_RETRIES = 2
DEFAULT_GPUS_PER_UNIT = 0.25
RAY_INSTALL_HINT = ("install it with `.venv/bin/pip install -e '.[ray]'` "
                    "(`make study ... EXECUTOR=ray` does this for you)")


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
    train_fn: replaces dqn.core.train.train on the workers (tests inject failures with it); it is
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
        # one CPU: train() runs one torch thread (see dqn.core.device.cpu_threads)
        opts: dict[str, Any] = {"num_cpus": 1, "max_retries": self.max_retries,
                                "retry_exceptions": True, "name": unit.name}
        if gpus and wants != "cpu":
            opts["num_gpus"] = self.gpus_per_unit
        return opts

    def _run(self, ray: Any, units: Sequence[Unit], on_done: OnDone, label: str,
             progress: bool) -> list[Failure]:
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
