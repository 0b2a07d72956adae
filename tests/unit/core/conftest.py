"""The core's unit tests share the ``rig`` fixture: the decision and the answering over fakes."""

from tests.support.rig import rig  # noqa: F401 - a fixture
