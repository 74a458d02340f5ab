"""The Lua scripts behind ``RedisStateStore``: every shared transition is one
script, so it is atomic on the server and judged on the server's clock.

Key layout, per breaker key ``K`` (``host:port``), under ``prefix``::

    {prefix}:{K}:state      hash: state (closed|open|half_open), until (ms, server
                            clock), gen (generation), failures, successes
    {prefix}:{K}:reporters  sorted set: process id -> time of its last failure
                            (the quorum), trimmed to the breaker's window
    {prefix}:{K}:leases     sorted set: probe lease token -> expiry (ms)

Every key has a TTL (``ttl``, plus the open period while open). The braces make
the three keys of a breaker one Redis Cluster hash slot. Nothing here holds
request data: counters, states, process ids and lease tokens only.

Each script returns ``{state, ms, gen}``; transitions are published on
``{prefix}:events`` as ``state|ms|gen|K``.
"""

from __future__ import annotations

__all__ = ["FAIL", "FETCH", "PROBE", "PROBE_DONE", "RESET"]

_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function publish(channel, state, ms, gen, key)
  redis.call('PUBLISH', channel, string.format('%s|%d|%d|', state, ms, gen) .. key)
end
"""

# A failure counted by a closed breaker, or (ARGV[9] == '1') a local trip vote.
# KEYS: state, reporters, leases. ARGV: process id, failure_threshold, quorum,
# window ms, open period ms, ttl ms, channel, breaker key, trip.
FAIL = (
    _PRELUDE
    + """
local now = now_ms()
local s = redis.call('HMGET', KEYS[1], 'state', 'until', 'gen')
local gen = tonumber(s[3]) or 0
if s[1] == 'open' then
  return {'open', math.max(0, (tonumber(s[2]) or now) - now), gen}
elseif s[1] == 'half_open' then
  return {'half_open', 0, gen}
end
local window = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('PEXPIRE', KEYS[2], window)
local threshold = tonumber(ARGV[2])
local failures = threshold
if ARGV[9] ~= '1' then
  failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
end
local ttl = tonumber(ARGV[6])
if failures >= threshold and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  gen = math.max(now, gen + 1)
  local period = tonumber(ARGV[5])
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + period, 'gen', gen,
             'failures', 0, 'successes', 0)
  redis.call('PEXPIRE', KEYS[1], ttl + period)
  redis.call('DEL', KEYS[2], KEYS[3])
  publish(ARGV[7], 'open', period, gen, ARGV[8])
  return {'open', period, gen}
end
if ARGV[9] == '1' then
  return {'closed', 0, gen}
end
redis.call('PEXPIRE', KEYS[1], ttl)
if failures == 1 then
  publish(ARGV[7], 'dirty', 0, gen, ARGV[8])
end
return {'closed', failures, gen}
"""
)

# A success after failures: reset the fleet's count (only while closed).
# KEYS: state.
RESET = """
local s = redis.call('HMGET', KEYS[1], 'state', 'failures')
if (not s[1] or s[1] == 'closed') and (tonumber(s[2]) or 0) > 0 then
  redis.call('HSET', KEYS[1], 'failures', 0)
  return 1
end
return 0
"""

# A breaker wants to probe. KEYS: state, leases. ARGV: lease token,
# half_open_max_calls, lease ms, ttl ms.
PROBE = (
    _PRELUDE
    + """
local now = now_ms()
local s = redis.call('HMGET', KEYS[1], 'state', 'until', 'gen')
local gen = tonumber(s[3]) or 0
if s[1] ~= 'open' and s[1] ~= 'half_open' then
  return {'local', 0, gen}
end
if s[1] == 'open' then
  local left = (tonumber(s[2]) or 0) - now
  if left > 0 then
    return {'open', left, gen}
  end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'successes', 0)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local lease = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
  if redis.call('PTTL', KEYS[2]) < lease then
    redis.call('PEXPIRE', KEYS[2], lease)
  end
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) + lease)
  return {'granted', lease, gen}
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {'busy', math.max(1, tonumber(first[2]) - now), gen}
"""
)

# A probe's verdict, or ('ignored') a lease given back unused: a cancelled probe,
# or one whose grant never reached its caller. KEYS: state, leases, reporters.
# ARGV: lease token, gen, outcome, success_threshold, open period ms, ttl ms,
# channel, breaker key.
PROBE_DONE = (
    _PRELUDE
    + """
local now = now_ms()
local released = redis.call('ZREM', KEYS[2], ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'state', 'gen')
local gen = tonumber(s[2]) or 0
if ARGV[3] == 'ignored' then
  if released == 1 and s[1] == 'half_open' then
    publish(ARGV[7], 'free', 0, gen, ARGV[8])
  end
  return {'free', 0, gen}
end
if s[1] ~= 'half_open' or gen ~= tonumber(ARGV[2]) then
  return {'stale', 0, gen}
end
local ttl = tonumber(ARGV[6])
if ARGV[3] == 'success' then
  if redis.call('HINCRBY', KEYS[1], 'successes', 1) < tonumber(ARGV[4]) then
    return {'half_open', 0, gen}
  end
  gen = math.max(now, gen + 1)
  redis.call('HSET', KEYS[1], 'state', 'closed', 'gen', gen, 'failures', 0, 'successes', 0)
  redis.call('HDEL', KEYS[1], 'until')
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('DEL', KEYS[2], KEYS[3])
  publish(ARGV[7], 'closed', 0, gen, ARGV[8])
  return {'closed', 0, gen}
elseif ARGV[3] == 'failure' then
  gen = math.max(now, gen + 1)
  local period = tonumber(ARGV[5])
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', now + period, 'gen', gen, 'successes', 0)
  redis.call('PEXPIRE', KEYS[1], ttl + period)
  redis.call('DEL', KEYS[2])
  publish(ARGV[7], 'open', period, gen, ARGV[8])
  return {'open', period, gen}
end
return {'half_open', 0, gen}
"""
)

# The shared state of one breaker. KEYS: state.
FETCH = (
    _PRELUDE
    + """
local now = now_ms()
local s = redis.call('HMGET', KEYS[1], 'state', 'until', 'gen')
local gen = tonumber(s[3]) or 0
if s[1] == 'open' then
  return {'open', math.max(0, (tonumber(s[2]) or now) - now), gen}
elseif s[1] == 'half_open' then
  return {'half_open', 0, gen}
end
return {'closed', 0, gen}
"""
)
