"""The tiers of the decision, as a chain: each looks up a request's candidates and judges them.

``RetrievalPolicy`` (``writing.core.policy``) walks the chain in order and serves the first candidate a
tier chooses. A tier is one class in its own module (``curated``, ``answer``) and one line in the
wiring (``writing.wiring.build_chain``). See ``Tier`` for what a tier does.
"""

from writing.core.tiers.base import Tier, judge_found

__all__ = ["Tier", "judge_found"]
