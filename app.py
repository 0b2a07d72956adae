"""The service's HTTP entry point: ``uvicorn app:app`` or ``python app.py``.

A thin entry point: the app itself is built by ``writing.api.app.create_app`` (see the README's
Architecture section). Creating it is cheap; the model and the connections are made at start-up.
"""

from writing.api.app import create_app, main

app = create_app()

if __name__ == "__main__":
    main()
