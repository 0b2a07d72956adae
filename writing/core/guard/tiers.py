"""Each tier's rules, in the order they run: the first rule that rejects decides.

* generated (candidate = a stored prompt; symmetric): conflicting numbers, then time words, then a
  negation, an entity, constraints, genre and topic, and last a number or time word on one side only.
  Conflicts come before what is merely missing, so that the verdict names the strongest difference.
* curated (candidate = a passage that would be served; prompt -> passage only, the passage naturally
  says much more): the prompt's numbers, time words, negations and entities must be in the passage.
  Constraints, genre and topic are not checked against a passage.
"""

from __future__ import annotations

from writing.core.guard.constraints import constraint, genre
from writing.core.guard.entities import entity, passage_entity
from writing.core.guard.negation import negation, passage_negation
from writing.core.guard.numbers import number_conflict, number_one_side, passage_number
from writing.core.guard.rule import Rule
from writing.core.guard.times import passage_time, time_conflict
from writing.core.guard.topic import topic
from writing.core.guard.verdict import Tier

RULES: dict[Tier, tuple[Rule, ...]] = {
    "generated": (number_conflict, time_conflict, negation, entity, constraint, genre, topic, number_one_side),
    "curated": (passage_number, passage_time, passage_negation, passage_entity),
}
