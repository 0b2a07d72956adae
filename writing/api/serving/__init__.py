"""The answering routes' work, one call per request, whichever way the request came in: FastAPI's route
(``writing.api.routes``) or the lean lane in front of it (``writing.api.lane``)."""
