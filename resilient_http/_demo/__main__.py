"""``python -m resilient_http._demo worker ...``: how the demo starts its workers."""

from __future__ import annotations

import sys

from . import run
from ._worker import worker_main

if sys.argv[1:2] == ["worker"]:
    sys.exit(worker_main(sys.argv[2:]))
sys.exit(run())
