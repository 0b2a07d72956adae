"""Helpers shared by the tests (imported as ``tests.support.*``; fixtures stay in ``tests/conftest.py``)."""
