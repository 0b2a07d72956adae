"""The retrieval-first writing service.

Layers, from the outside in (each imports only from the ones below it):

- ``writing.api``: the HTTP surface (FastAPI): one router module per surface in ``api/routes``, their
  request/response models in ``api/protocol``, the middleware, the error envelope, the stream relay.
- ``writing.core``: the retrieval-first decision, the corpus writer, their value types, and the
  protocols (``core/ports.py``) the outside world must implement.
- ``writing.adapters``: those implementations: the embedding model and its batcher, Milvus, the LLM client.
- ``writing.settings``, ``writing.errors``, ``writing.text``, ``writing.observability``: shared by all.
- ``writing.wiring`` builds adapters from the settings and plugs them into the core;
  ``writing.cli`` holds the command-line tools; ``writing.devtools`` the local LLM stand-in and the
  process helpers that tests and benchmarks use.

Importing the package (or any module in it) loads no model and opens no connection.
"""

__version__ = "1.3.0"
