"""How the findings page and REPORT.md word verdicts and numbers in prose, and REPORT.md's
glossary of its columns (HOW_TO_READ). No torch."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

WORDS = ("worse", "better", "equivalent", "inconclusive", "too few seeds")
"""The verdict words in the order the page lists them."""
DECIDED = ("worse", "better", "equivalent")
"""The words that are decisions (the rest are counted, not listed)."""


def num(x: float) -> str:
    """A return or IQM as prose shows it: integers above 100 in size, else 3 significant
    figures."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def span(values: pd.Series) -> str:
    """'20' when every value is 20, else 'min-max'."""
    lo, hi = values.min(), values.max()
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


def metric_words(what: str, rows: pd.DataFrame, p: str,
                 detail: Callable[[pd.DataFrame], str]) -> str:
    """'Final score: *worse* in 2 (detail); *inconclusive* in 1': each verdict word of metric
    prefix p that rows reach, with its count, and for a decided word `detail` of its rows."""
    said = []
    for word in WORDS:
        hit = rows[rows[f"{p}verdict"] == word]
        if not hit.empty:
            said.append(f"*{word}* in {len(hit)}"
                        + (f" ({detail(hit)})" if word in DECIDED else ""))
    return f"{what[0].upper()}{what[1:]}: " + "; ".join(said)


HOW_TO_READ = """\
One number per seed, then aggregated over seeds per variant:

- **final**: a seed's mean greedy-evaluation return over its last {k} evaluations; **IQM** is
  the interquartile mean over seeds (mean of the middle 50%), **mean** the plain mean.
  Brackets are 95% percentile-bootstrap confidence intervals over seeds ({resamples:,}
  resamples, seeded, reproducible; endpoints are mid-quantiles, so Monte-Carlo noise moves
  them by less than 0.005 on a [0, 1] scale), except P(improvement)'s: a Brunner-Munzel
  interval on the logit scale, the one the equivalence test inverts (the bootstrap's
  under-covers with seeds tied at the cap).
- **solved fraction**: seeds whose final score reaches the environment's solved threshold.
- **AUC**: area under the seed's evaluation curve, return normalised to [0, 1] by the
  environment's return range, divided by the step span (1 = maximum return from the start): it
  measures learning speed as well as level.
- **median steps to threshold**: the environment step by which half of the seeds had first
  reached the threshold in a greedy evaluation; "not reached" when more than half never did.
- **collapses**: seeds that reached the threshold and later fell below half of it (on the
  normalised scale); **diverged**: seeds whose loss became NaN/inf.
- **effect**: IQM of the variant minus IQM of the baseline, in return units.
- **P(improvement)**: probability that a random seed of the variant scores higher than a random
  seed of the baseline (ties count one half); 0.5 means no difference.
- **verdicts**, on the final score and on the AUC alike: *better* / *worse* when a two-sided
  studentized permutation test of P(improvement) = 0.5 rejects (valid when the spreads
  differ); *equivalent* when two one-sided Brunner-Munzel tests (logit scale) show
  |P(improvement) - 0.5| < the study's margin (0.15 unless the study says otherwise) and, for
  final scores of CartPole, where good seeds tie at the maximum return, an exact test also
  shows the shares of seeds at the maximum (cap rates) differ by less than twice the margin;
  *inconclusive* when neither; *too few seeds* when the seed counts cannot reach the level at
  all. **adj. p** is the difference test's p-value after a Shaffer-type Holm correction over
  every test of the study (both metrics, both tests; a comparison's "no difference" and
  "differs by the margin" nulls cannot both hold, so each pair counts once), so the chance of
  any false verdict word in a study is at most 5%. *Inconclusive* is not *equivalent*: it says the
  seeds cannot tell.
- **power**: the smallest |P(improvement) - 0.5| the comparison detects with 80% power at its
  seed counts and the study's corrected level; *underpowered* when that exceeds the margin
  (a power flag of the difference test); whether the equivalence test can reach the level at
  all is a separate flag (`equivalence_reachable`: its p-value if every seed tied).
- **adaptive studies** train seeds in stages and stop giving seeds to a variant once both its
  verdicts are reached; each stage's tests use the first seeds only and a level from an
  alpha-spending function split over the study's possible true nulls (exact group-sequential
  boundaries for the difference test; for equivalence Bonferroni over the stages that can
  reach it), so the chance of any false verdict word is again at most 5%. There **adj. p** is
  the deciding test's p-value scaled by 5% / its stage's level (below 0.05 exactly when it
  decided), the P(improvement) interval is a repeated 95% confidence interval (it holds
  whenever the comparison stopped), and *inconclusive* means still open after the last
  stage.
- **at ceiling**: at least half of the baseline's seeds end at the maximum return, so the final
  score can only show a variant worse; the verdict on AUC then leads (in bold).
"""
