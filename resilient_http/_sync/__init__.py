"""The sync binding (``httpx.Client``), generated from the async one but for ``_io.py``."""
