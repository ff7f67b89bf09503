--[[
  Takes one permit of a tool shared by every instance, or says how long until one may be free:
  concurrency as leases that expire (a killed instance's permits come back after the lease), and
  starts counted over a strict rolling window. Redis's clock, so hosts' clocks never matter.

  Input:
    KEYS[1] leases: sorted set, member = permit id, score = lease end (ms)
    KEYS[2] starts: sorted set, member = permit id, score = start time (ms)
    ARGV[1] permit id (unique)
    ARGV[2] max concurrent
    ARGV[3] max starts per window
    ARGV[4] window, ms
    ARGV[5] lease, ms

  Output:
    { granted (1|0), ms until the window has room (0 when it has, or when concurrency is the bound),
      permits in flight, starts in the window }
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local max_concurrent = tonumber(ARGV[2])
local max_starts = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local active = redis.call('ZCARD', KEYS[1])
local started = redis.call('ZCARD', KEYS[2])

if started >= max_starts then
  local index = started - max_starts
  local oldest = redis.call('ZRANGE', KEYS[2], index, index, 'WITHSCORES')
  local wait = math.max(1, tonumber(oldest[2]) + window - now)
  return { 0, wait, active, started }
end
if active >= max_concurrent then
  return { 0, 0, active, started }
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
redis.call('PEXPIRE', KEYS[2], window * 2)
return { 1, 0, active + 1, started + 1 }
