"""Thresholds an admin sets at run time, over the environment's defaults.

``SIMILARITY_THRESHOLD`` (the curated tier) and ``ANSWER_CACHE_THRESHOLD`` (the answer tier) come from
the environment at start-up. An admin may override either while the service runs (``PUT
/v1/settings/threshold``): the value is stored next to the corpus, so every worker and replica picks it
up within ``RUNTIME_SETTINGS_REFRESH_INTERVAL`` seconds and it survives restarts, until it is reset
(``DELETE``), when the environment's value applies again. This module holds the values and applies
them to the decision; the store is an adapter (``MilvusRuntimeSettings``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from writing.errors import InvalidRequest

logger = logging.getLogger(__name__)

CURATED_TIER, ANSWER_TIER = "curated", "answer"
SETTING_NAMES = {CURATED_TIER: "threshold.curated", ANSWER_TIER: "threshold.answer"}
ENV_NAMES = {CURATED_TIER: "SIMILARITY_THRESHOLD", ANSWER_TIER: "ANSWER_CACHE_THRESHOLD"}


class StoredValue(Protocol):
    value: object
    ts: int
    actor: str


class Thresholded(Protocol):
    threshold: float


@dataclass(frozen=True)
class ThresholdState:
    value: float
    default: float
    source: str  # "environment" | "runtime" | "budget"
    updated_at: int | None
    updated_by: str | None


class RuntimeThresholds:
    """The two thresholds as they are now: the environment's default or a stored override."""

    def __init__(
        self,
        service: Thresholded,
        answer_cache: Thresholded | None,
        *,
        curated_default: float,
        answer_default: float,
        curated_range: tuple[float, float],
        answer_range: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        self._targets: dict[str, Thresholded | None] = {CURATED_TIER: service, ANSWER_TIER: answer_cache}
        self._defaults = {CURATED_TIER: curated_default, ANSWER_TIER: answer_default}
        self._ranges = {CURATED_TIER: curated_range, ANSWER_TIER: answer_range}
        self._stored: dict[str, StoredValue] = {}
        self._raw: dict[str, StoredValue] = {}
        self._budgeted: dict[str, float] = {}  # the error budget's thresholds (writing.core.budget.keeper)

    def configured(self, tier: str) -> float:
        """The threshold without the budget: an admin's stored one, else the environment's."""
        found = self._stored.get(tier)
        return float(found.value) if found is not None else self._defaults[tier]  # type: ignore[arg-type]

    def set_budgeted(self, tier: str, value: float | None) -> None:
        """The error budget's threshold for a tier (clamped to its run-time bounds); None: no longer."""
        if value is None:
            self._budgeted.pop(tier, None)
        else:
            low, high = self._ranges[tier]
            self._budgeted[tier] = min(high, max(low, value))
        self.apply(self._raw)

    def check(self, tier: str, value: float) -> float:
        """A value an admin asks for; InvalidRequest (422) naming the allowed range otherwise."""
        low, high = self._ranges[tier]
        if not (low <= value <= high) or value <= 0:
            raise InvalidRequest(f"the {tier} threshold must be in [{low}, {high}] and above 0; {value} is not")
        return value

    def apply(self, stored: dict[str, StoredValue]) -> None:
        """Bring the decision in line with what is stored (called after every read of the store); a tier
        under an error budget follows the budget's threshold while it has one."""
        self._raw = stored
        self._stored = {}
        for tier, name in SETTING_NAMES.items():
            found = stored.get(name)
            value = self._defaults[tier]
            if found is not None:
                try:
                    value = self.check(tier, float(found.value))
                    self._stored[tier] = found
                except (TypeError, ValueError, InvalidRequest):
                    logger.warning("ignoring a stored %s threshold that is not a valid value", tier)
                    value = self._defaults[tier]
            source = "runtime" if tier in self._stored else "env"
            if tier in self._budgeted:
                value, source = self._budgeted[tier], "budget"
            target = self._targets[tier]
            if target is not None and target.threshold != value:
                logger.info("%s threshold now %.4f (%s)", tier, value, source)
                target.threshold = value

    def state(self) -> dict[str, ThresholdState]:
        out = {}
        for tier in SETTING_NAMES:
            found = self._stored.get(tier)
            target = self._targets[tier]
            value = target.threshold if target is not None else self._defaults[tier]
            out[tier] = ThresholdState(
                value=value,
                default=self._defaults[tier],
                source="budget" if tier in self._budgeted else "runtime" if found is not None else "environment",
                updated_at=found.ts if found is not None else None,
                updated_by=found.actor if found is not None else None,
            )
        return out
