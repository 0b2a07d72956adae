"""Settings: every invalid value stops start-up with a message naming the variable."""

from __future__ import annotations

import pytest


def test_invalid_settings_name_the_variable(monkeypatch):
    from writing.settings import SettingsError, load_settings

    monkeypatch.setenv("SIMILARITY_THRESHOLD", "1.5")
    with pytest.raises(SettingsError, match="SIMILARITY_THRESHOLD"):
        load_settings()
    monkeypatch.delenv("SIMILARITY_THRESHOLD")
    monkeypatch.setenv("MILVUS_URI", "./data/milvus.db")
    with pytest.raises(SettingsError, match="MILVUS_URI.*MILVUS_LITE_PATH"):
        load_settings()
    monkeypatch.delenv("MILVUS_URI")
    monkeypatch.setenv("LLM_TIMEOUT", "soon")
    with pytest.raises(SettingsError, match="LLM_TIMEOUT"):
        load_settings()


# -- workers and Milvus Lite ownership ---------------------------------------------------------------------
def test_several_workers_need_a_milvus_server():
    from writing.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="MILVUS_URI"):
        load_settings(workers=2, milvus_uri="")
    assert load_settings(workers=2, milvus_uri="http://127.0.0.1:19530").workers == 2
