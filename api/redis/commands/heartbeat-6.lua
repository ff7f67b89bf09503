--[[
  Publishes this instance in the registry; returns every live instance (N = their count) and the
  shared limiter's load, which keeps the fail-safe's picture of the cluster fresh between calls.

  Input:
    KEYS[1] instances     ZSET   instance id -> heartbeat expiry (ms, Redis time)
    KEYS[2] instance key  STRING this instance's figures (JSON), expiring with the heartbeat
    KEYS[3] leases        ZSET   (tryStart-7.lua)
    KEYS[4] starts        ZSET   (tryStart-7.lua)
    KEYS[5] state         HASH   (tryStart-7.lua)
    KEYS[6] beats         HASH   instance id -> Redis time (ms) of its last heartbeat
    ARGV[1] instance id
    ARGV[2] figures (JSON)
    ARGV[3] ttl ms
    ARGV[4] prefix of instance keys (an instance's key = prefix .. id; same slot-free layout as KEYS[2])
    ARGV[5] reported window ms (60 000)
    ARGV[6] bucket ms (5 000) and ARGV[7] buckets (13): the window's starts by age, so that an
            instance cut off from Redis can let them leave its fallback window when they happened

  Output: { stamp (as in tryStart-7.lua), active leases, starts in the window, tokens in the window,
            K, starts in bucket 1 (the newest: age 0 to bucket ms) … bucket K,
            then for each live instance: its figures JSON, the Redis time of its last heartbeat }
            (the beat times tell which figures were published after a Redis outage: FailSafeLimiter)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local stamp = now .. '.' .. string.format('%03d', tonumber(time[2]) % 1000)
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[6], ARGV[1], now)
redis.call('PEXPIRE', KEYS[6], ttl * 10)
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #lapsed > 0 then
  redis.call('ZREM', KEYS[1], unpack(lapsed))
  redis.call('HDEL', KEYS[6], unpack(lapsed))
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local active = redis.call('ZCARD', KEYS[3])
local starts = redis.call('ZCOUNT', KEYS[4], '(' .. (now - tonumber(ARGV[5])), '+inf')
local tokens = tonumber(redis.call('HGET', KEYS[5], 'tokensTotal') or '0')
local result = { stamp, active, starts, tokens }
local bucketMs = tonumber(ARGV[6] or '0')
local buckets = tonumber(ARGV[7] or '0')
table.insert(result, buckets)
for index = 0, buckets - 1 do
  table.insert(result, redis.call('ZCOUNT', KEYS[4], '(' .. (now - (index + 1) * bucketMs), now - index * bucketMs))
end
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local figures = redis.call('GET', ARGV[4] .. id)
  if figures then
    table.insert(result, figures)
    table.insert(result, tonumber(redis.call('HGET', KEYS[6], id) or '0'))
  end
end
return result
