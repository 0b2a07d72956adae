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


# -- keys ---------------------------------------------------------------------------------------------------
def test_metrics_keys_need_caller_or_admin_keys_and_take_no_tenant():
    """A metrics key alone would leave the service without authentication (every loopback client an admin)
    while its operator believes /metrics is closed: start-up refuses it, naming the variables."""
    from writing.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="METRICS_API_KEYS needs API_KEYS or ADMIN_API_KEYS"):
        load_settings(metrics_api_keys="prom-key")
    with pytest.raises(SettingsError, match="METRICS_API_KEYS"):
        load_settings(metrics_api_keys="prom-key:acme", admin_api_keys="adm")
    for other in ({"admin_api_keys": "adm,prom-key"}, {"api_keys": "k,prom-key:acme"}):
        with pytest.raises(SettingsError, match="METRICS_API_KEYS: give Prometheus a key of its own"):
            load_settings(metrics_api_keys="prom-key", **other)
    settings = load_settings(metrics_api_keys=" prom-1 , prom-2 ", admin_api_keys="adm")
    assert settings.metrics_keys == ["prom-1", "prom-2"]
    assert load_settings().metrics_keys == []


def test_a_metrics_key_is_its_own_role():
    from writing.api.auth import ADMIN, CALLER, METRICS, KeyRing

    ring = KeyRing([("c", None)], ["a"], ["m"])
    assert ring.authenticate({"x-api-key": "m"}, None).role == METRICS
    assert ring.authenticate({"authorization": "Bearer a"}, None).role == ADMIN
    assert ring.authenticate({"x-api-key": "c"}, None).role == CALLER
    assert ring.authenticate({"x-api-key": "mm"}, None) is None
    assert KeyRing([], [], ["m"]).enabled
