--[[
  Extends the leases of the calls this instance still runs. A lease that expired meanwhile (Redis or
  this process stalled longer than the lease) is written again: the call is still in flight at the
  provider, and counting it is the truth.

  Input:
    KEYS[1] leases  ZSET permit id -> lease expiry (ms, Redis time)
    ARGV[1] lease ms
    ARGV[2..] permit ids

  Output: Redis time (ms)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local expiry = now + tonumber(ARGV[1])
for index = 2, #ARGV do
  redis.call('ZADD', KEYS[1], expiry, ARGV[index])
end
return now
