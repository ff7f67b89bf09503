--[[
  Gives a call's concurrency slot back: removes its lease. Idempotent.

  Input:
    KEYS[1] leases  ZSET permit id -> lease expiry
    ARGV[1] permit id

  Output: 1 if the lease was held, 0 if it had already gone (released or expired)
]]
return redis.call('ZREM', KEYS[1], ARGV[1])
