"""The async binding (``httpx.AsyncClient``): the source the sync binding is generated from."""
