"""resilient_http for httpx2, the next generation of httpx (``pip install
'resilient-http[httpx2]'``)::

    import anthropic
    import resilient_http.httpx2 as resilient

    client = anthropic.AsyncAnthropic(http_client=resilient.ResilientClient())

The same four classes as ``resilient_http``, bound to httpx2: the transports
and clients subclass httpx2's, and rejections are ``httpx2.TransportError``\\ s
(catch ``resilient_http.httpx2.CircuitOpenError``). Policies, events, the
stale cache, stores and breakers are not bound to either library: they are the
very same objects as ``resilient_http``'s, re-exported here.
"""

from .._breaker import Breaker as Breaker
from .._breaker import CircuitState as CircuitState
from .._cache import StaleCache as StaleCache
from .._events import AttemptFinished as AttemptFinished
from .._events import BreakerEvicted as BreakerEvicted
from .._events import CallRejected as CallRejected
from .._events import Event as Event
from .._events import FallbackServed as FallbackServed
from .._events import Hedged as Hedged
from .._events import Listener as Listener
from .._events import RetryScheduled as RetryScheduled
from .._events import StateChanged as StateChanged
from .._policy import BreakerPolicy as BreakerPolicy
from .._policy import HedgePolicy as HedgePolicy
from .._policy import Policy as Policy
from .._policy import RetryBudget as RetryBudget
from .._policy import RetryPolicy as RetryPolicy
from .._store import InMemoryStore as InMemoryStore
from .._store import StateStore as StateStore
from .._store import SyncStateStore as SyncStateStore
from ._async._client import ResilientClient as ResilientClient
from ._async._transport import ResilientTransport as ResilientTransport
from ._exceptions import BulkheadFullError as BulkheadFullError
from ._exceptions import CircuitOpenError as CircuitOpenError
from ._exceptions import DeadlineExceeded as DeadlineExceeded
from ._exceptions import RejectedError as RejectedError
from ._fallbacks import service_unavailable as service_unavailable
from ._sync._client import SyncResilientClient as SyncResilientClient
from ._sync._transport import SyncResilientTransport as SyncResilientTransport

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
    "service_unavailable",
]
