"""Load passages into the curated corpus: ``python ingest.py FILE`` (see ``--help``).

A thin entry point for ``writing.cli.ingest``, kept where the design card and scripts call it.
"""

import sys

from writing.cli.ingest import main

if __name__ == "__main__":
    sys.exit(main())
