"""Fleet-shared circuit breakers through Redis (extra ``redis``)::

    from redis.asyncio import Redis
    from resilient_http import ResilientClient
    from resilient_http.redis import RedisStateStore

    store = RedisStateStore(Redis.from_url("redis://redis.internal:6379/0"), quorum=2)
    async with ResilientClient(store=store) as client:
        ...

Every process keeps its local breakers, which still take every decision on the
request path; the store shares three things through Redis:

- **failures**: each failure counted by a closed breaker is reported (off the
  request path, by a background task). Once the fleet has reported
  ``failure_threshold`` failures in a row (a success anywhere resets the count)
  from at least ``quorum`` distinct processes within the breaker's ``window``,
  the shared circuit opens. Below quorum only the processes' own breakers open.
  In rate mode (``failure_rate``), each local trip is one process's vote.
- **open**: an opening is published (pub/sub) and mirrored into every process's
  breaker at once, with the time left judged on the Redis server's clock.
- **half-open**: when the open period ends, a probe needs a lease held in Redis:
  ``half_open_max_calls`` probes for the whole fleet. A lease expires after
  ``lease`` seconds, so a process that dies mid-probe never wedges the fleet.
  The probe's verdict closes (``success_threshold`` successes) or reopens the
  shared circuit for everyone.

Every transition is one Lua script (atomic on the server). Keys are
``{prefix}:{<breaker key>}:state|reporters|leases`` with TTLs; they hold
counters, states and process ids, never request data.

The success path never waits on Redis; a success writes only when the fleet has
failure state to reset. Redis down or slower than ``timeout``: the store logs
one WARNING, every process runs on its local breakers, no request fails, and the
store reconnects every ``retry_interval`` seconds and rejoins (one INFO).

``redis.asyncio`` needs an asyncio event loop: under trio the transport keeps
working on its local breakers (one WARNING).
"""

from ._store import RedisStateStore as RedisStateStore

__all__ = ["RedisStateStore"]
