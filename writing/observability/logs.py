"""Logging set-up: every logger of the service lives under the package's own name.

Modules log through ``logging.getLogger(__name__)``, so each logger's name starts with ``writing.``
and one level set on the package's logger reaches them all; ``PROJECT_LOGGERS`` is derived from the
package, not maintained by hand. At INFO the service logs decisions and stage timings, never prompt or
answer bodies (those are DEBUG).
"""

from __future__ import annotations

import logging

import writing

PROJECT_LOGGERS: tuple[str, ...] = (writing.__name__,)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=LOG_FORMAT)
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(level)
