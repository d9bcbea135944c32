"""Learning expectations declared in study files (`[expect.<variant>]`), and their checks.

    [expect.baseline]
    min_final_iqm = 475            # measured: ...
    min_solved_fraction = 0.9
    [expect.memory_clearing]
    worse_than = "baseline"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dqn.config import did_you_mean

if TYPE_CHECKING:
    from dqn.study import Study

# key -> (type, what it checks)
KEYS: dict[str, tuple[type, str]] = {
    "min_final_iqm": (float, "IQM of the final greedy score is at least this"),
    "min_solved_fraction": (float, "fraction of seeds whose final score reaches the threshold"),
    "max_median_steps_to_threshold": (float, "median env steps to reach the solved threshold"),
    "worse_than": (str, "upper end of the CI of P(variant > other) is below 0.5"),
    "better_than": (str, "lower end of the CI of P(variant > other) is above 0.5"),
}


def validate(study: Study) -> None:
    """Raise StudyError naming file, variant, key and value for any bad expectation."""
    from dqn.study import StudyError

    where = study.path.name
    for variant, table in study.expect.items():
        if variant not in study.variants:
            raise StudyError(f"{where}: [expect.{variant}]: no variant '{variant}'"
                             f"{did_you_mean(variant, study.variants)}")
        if not isinstance(table, dict):
            raise StudyError(f"{where}: key 'expect.{variant}': {table!r} must be a table")
        for key, value in table.items():
            if key not in KEYS:
                raise StudyError(f"{where}: [expect.{variant}] unknown key '{key}' "
                                 f"(value {value!r}){did_you_mean(key, KEYS)}")
            kind = KEYS[key][0]
            ok = (isinstance(value, str) and value in study.variants and value != variant
                  if kind is str else
                  isinstance(value, int | float) and not isinstance(value, bool))
            if not ok:
                want = "another variant's name" if kind is str else "a number"
                raise StudyError(f"{where}: [expect.{variant}] key '{key}': {value!r} must be "
                                 f"{want}")


def describe(variant: str, key: str, value: Any) -> str:
    """A one-line statement of an expectation, for test ids and messages."""
    return f"{variant}.{key}={value}"
