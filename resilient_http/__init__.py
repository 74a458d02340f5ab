"""resilient_http: per-host circuit breakers, safe retries and fallbacks for httpx."""

from ._async._client import ResilientClient as ResilientClient
from ._async._transport import ResilientTransport as ResilientTransport
from ._breaker import Breaker as Breaker
from ._breaker import CircuitState as CircuitState
from ._cache import StaleCache as StaleCache
from ._events import AttemptFinished as AttemptFinished
from ._events import BreakerEvicted as BreakerEvicted
from ._events import CallRejected as CallRejected
from ._events import Event as Event
from ._events import FallbackServed as FallbackServed
from ._events import Hedged as Hedged
from ._events import Listener as Listener
from ._events import RetryScheduled as RetryScheduled
from ._events import StateChanged as StateChanged
from ._exceptions import BulkheadFullError as BulkheadFullError
from ._exceptions import CircuitOpenError as CircuitOpenError
from ._exceptions import DeadlineExceeded as DeadlineExceeded
from ._exceptions import RejectedError as RejectedError
from ._fallbacks import service_unavailable as service_unavailable
from ._policy import BreakerPolicy as BreakerPolicy
from ._policy import HedgePolicy as HedgePolicy
from ._policy import Policy as Policy
from ._policy import RetryBudget as RetryBudget
from ._policy import RetryPolicy as RetryPolicy
from ._store import InMemoryStore as InMemoryStore
from ._store import StateStore as StateStore
from ._store import SyncStateStore as SyncStateStore
from ._sync._client import SyncResilientClient as SyncResilientClient
from ._sync._transport import SyncResilientTransport as SyncResilientTransport

__version__ = "0.1.0"

__all__ = [
    "AttemptFinished",
    "Breaker",
    "BreakerEvicted",
    "BreakerPolicy",
    "BulkheadFullError",
    "CallRejected",
    "CircuitOpenError",
    "CircuitState",
    "DeadlineExceeded",
    "Event",
    "FallbackServed",
    "HedgePolicy",
    "Hedged",
    "InMemoryStore",
    "Listener",
    "Policy",
    "RejectedError",
    "ResilientClient",
    "ResilientTransport",
    "RetryBudget",
    "RetryPolicy",
    "RetryScheduled",
    "StaleCache",
    "StateChanged",
    "StateStore",
    "SyncResilientClient",
    "SyncResilientTransport",
    "SyncStateStore",
    "__version__",
    "service_unavailable",
]
