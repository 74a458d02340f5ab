# Generated from resilient_http/_sync/__init__.py by tests/codegen.py: do not edit.
"""The sync binding (``httpx2.Client``), generated from the async one but for ``_io.py``."""
