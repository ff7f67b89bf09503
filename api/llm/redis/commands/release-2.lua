--[[
  Gives a call's concurrency slot back: removes its lease. Idempotent. When an instance was blocked
  on concurrency lately (tryStart-7.lua marks it), tells every instance on the release channel, so
  the waiting queues try again at once instead of at their next poll. Every release is announced on
  the load channel as "<stamp> <active>" (see tryStart-7.lua).

  Input:
    KEYS[1] leases  ZSET permit id -> lease expiry
    KEYS[2] state   HASH concurrencyWaitUntil (ms, Redis time)
    ARGV[1] permit id
    ARGV[2] release channel
    ARGV[3] load channel

  Output: 1 if the lease was held, 0 if it had already gone (released or expired)
]]
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 1 then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local stamp = now .. '.' .. string.format('%03d', tonumber(time[2]) % 1000)
  local waitUntil = tonumber(redis.call('HGET', KEYS[2], 'concurrencyWaitUntil') or '0')
  if waitUntil > now then redis.call('PUBLISH', ARGV[2], ARGV[1]) end
  -- Leases past their expiry still count here: an announcement may overstate, never understate.
  redis.call('PUBLISH', ARGV[3], stamp .. ' ' .. redis.call('ZCARD', KEYS[1]))
end
return removed
