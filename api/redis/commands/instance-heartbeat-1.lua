--[[
  Marks an instance alive until now + ttl (Redis's clock) and forgets instances whose mark lapsed.

  Input:
    KEYS[1] the instances sorted set (member = instance id, score = alive-until, ms)
    ARGV[1] instance id
    ARGV[2] ttl, ms

  Output:
    the number of instances alive, this one included
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
