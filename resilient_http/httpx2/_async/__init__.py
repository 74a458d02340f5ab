# Generated from resilient_http/_async/__init__.py by tests/codegen.py: do not edit.
"""The async binding (``httpx2.AsyncClient``): the source of the sync binding, but for ``_io.py``."""
