"""The async binding (``httpx.AsyncClient``): the source of the sync binding, but for ``_io.py``."""
