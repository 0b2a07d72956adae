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


# pymilvus warns on every query iterator that Milvus Lite and servers before 2.4 do not give it a
# timestamp (it uses its own, which is what the service wants): the exact tier's reload iterates every
# few seconds, so the warning would flood the log
PYMILVUS_ITERATOR_LOGGER = "pymilvus.orm.iterator"
QUIET_PYMILVUS = ("failed to get mvccTs from milvus server",)


def _not_mvcc_noise(record: logging.LogRecord) -> bool:
    return not any(part in record.getMessage() for part in QUIET_PYMILVUS)


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=LOG_FORMAT)
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(level)
    iterator = logging.getLogger(PYMILVUS_ITERATOR_LOGGER)
    if _not_mvcc_noise not in iterator.filters:
        iterator.addFilter(_not_mvcc_noise)
