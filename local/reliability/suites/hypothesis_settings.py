"""The settings of every hypothesis run of the harness (hypothesis is imported lazily: only the suites use it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import hypothesis


def hypothesis_settings(examples: int, *, derandomize: bool, shrink: bool) -> hypothesis.settings:
    """The settings of every hypothesis run here: no deadline (runs cross processes), no example database."""
    from hypothesis import HealthCheck, settings  # noqa: PLC0415 - see sequence_strategy

    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
        phases=_phases(shrink),
    )


def _phases(shrink: bool) -> list[Any]:
    from hypothesis import Phase  # noqa: PLC0415 - see sequence_strategy

    return [p for p in Phase if shrink or p not in (Phase.shrink, Phase.explain)]
