--[[
  Whether an instance's alive mark is still current (Redis's clock, so hosts' clocks never matter).

  Input:
    KEYS[1] the instances sorted set (member = instance id, score = alive-until, ms)
    ARGV[1] instance id

  Output:
    1 when alive, 0 when its mark lapsed or it left
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local until_ms = redis.call('ZSCORE', KEYS[1], ARGV[1])
if until_ms and tonumber(until_ms) > now then return 1 end
return 0
