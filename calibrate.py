"""Choose SIMILARITY_THRESHOLD from measured precision: ``python calibrate.py --pairs FILE --out DIR``.

A thin entry point for ``writing.cli.calibrate`` (see ``--help``), kept where users and scripts call it.
"""

import sys

from writing.cli.calibrate import main

if __name__ == "__main__":
    sys.exit(main())
