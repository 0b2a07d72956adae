"""Segmenters behind the hit guard's port (``writing.core.guard.ports.Tagger``)."""

from writing.adapters.segmenter.rjieba import RJiebaTagger

__all__ = ["RJiebaTagger"]
