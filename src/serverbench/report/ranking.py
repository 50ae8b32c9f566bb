"""The ranking behind the conclusion: for one app, its stacks best first, judged on the
heaviest profile that was measured; a stack with more than 1 % errors ranks after the clean ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from serverbench.report.checks import ERROR_RATE_LIMIT
from serverbench.report.facts import REFERENCE_ROLE, Facts, profile_index, profile_order
from serverbench.report.numbers import pct
from serverbench.results.aggregate import throughput_order
from serverbench.results.model import ResultsDocument


@dataclass(frozen=True, slots=True, kw_only=True)
class Ranked:
    facts: Facts
    disqualified: str | None  # why it ranks after every clean stack


def ranking(document: ResultsDocument, facts: Sequence[Facts], app: str) -> list[Ranked]:
    """Stacks for one app, best first, judged on the heaviest profile that was measured.

    A stack whose error rate exceeds 1 % ranks after every stack that stayed under it: its
    throughput is not something the app can rely on.
    """
    order = profile_order(document)
    candidates = [f for f in facts if f.ok and f.cell.role != REFERENCE_ROLE and f.cell.app == app]
    if not candidates:
        return []
    heaviest = max(
        {f.cell.profile for f in candidates}, key=lambda p: profile_index(order, p, missing=-1)
    )
    chosen = [f for f in candidates if f.cell.profile == heaviest]
    by_cell = {id(f.cell): f for f in chosen}
    ranked = [
        Ranked(
            facts=by_cell[id(c)],
            disqualified=f"{pct(c.error_rate * 100)} errors"
            if c.error_rate > ERROR_RATE_LIMIT
            else None,
        )
        for c in throughput_order([f.cell for f in chosen])
    ]
    return sorted(ranked, key=lambda r: r.disqualified is not None)
