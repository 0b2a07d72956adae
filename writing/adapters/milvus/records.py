"""Records that must be shared by every worker and replica and survive restarts, kept in Milvus next to
the corpus (the one store the service already depends on): one module per record, each a collection of
its own, re-exported here under the names the wiring uses.

- ``audit``: the audit log of admin actions (``<collection>_audit``)
- ``feedback``: the feedback reports on served answers (``<collection>_feedback``)
- ``labels``: the labelled pairs an admin makes from reports (``<collection>_labels``)
- ``runtime_settings``: the values an admin sets at run time (``<collection>_settings``)
- ``records_base``: what they share (the constant vector, opening once, pages after an id cursor)

Milvus needs a vector in every collection: the audit log, the labels and the settings carry a constant
2-dimensional one; a feedback report carries the reported prompt's embedding (the blocklist compares
prompts with it).
"""

from __future__ import annotations

from writing.adapters.milvus.audit import (
    AUDIT_FIELDS,
    AUDIT_SPEC,
    AUDIT_SUFFIX,
    MAX_DETAIL_CHARS,
    MilvusAuditLog,
    time_ordered_id,
)
from writing.adapters.milvus.feedback import FEEDBACK_FIELDS, FEEDBACK_SPEC, FEEDBACK_SUFFIX, MilvusFeedbackStore
from writing.adapters.milvus.labels import LABEL_FIELDS, LABELS_SPEC, LABELS_SUFFIX, MilvusLabelStore
from writing.adapters.milvus.runtime_settings import (
    SETTINGS_FIELDS,
    SETTINGS_SPEC,
    SETTINGS_SUFFIX,
    MilvusRuntimeSettings,
    StoredSetting,
    setting_id,
)

__all__ = [
    "AUDIT_FIELDS",
    "AUDIT_SPEC",
    "AUDIT_SUFFIX",
    "FEEDBACK_FIELDS",
    "FEEDBACK_SPEC",
    "FEEDBACK_SUFFIX",
    "LABELS_SPEC",
    "LABELS_SUFFIX",
    "LABEL_FIELDS",
    "MAX_DETAIL_CHARS",
    "SETTINGS_FIELDS",
    "SETTINGS_SPEC",
    "SETTINGS_SUFFIX",
    "MilvusAuditLog",
    "MilvusFeedbackStore",
    "MilvusLabelStore",
    "MilvusRuntimeSettings",
    "StoredSetting",
    "setting_id",
    "time_ordered_id",
]
