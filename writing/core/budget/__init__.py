"""An error budget per tier: the share of served hits that may be wrong, kept by the system itself.

``labels``: what is known about served (or nearly served) hits, and how far a judge's verdict can be
trusted; ``bound``: the upper confidence bound on the wrong-hit rate that labels give; ``thresholds``:
the lowest threshold (per tier and, with enough labels, per entry) whose bound stays within the budget;
``sampling``: which hits to verify, and how many a minute.
"""
