--[[
  A provider-wide Retry-After: no instance starts a call before Redis time now + duration. Holds
  only extend, never shorten.

  Input:
    KEYS[1] state  HASH heldUntil
    ARGV[1] duration ms

  Output: { heldUntil, now } (ms, Redis time)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local held = tonumber(redis.call('HGET', KEYS[1], 'heldUntil') or '0')
local wanted = now + math.max(0, tonumber(ARGV[1]))
if wanted > held then
  held = wanted
  redis.call('HSET', KEYS[1], 'heldUntil', held)
end
return { held, now }
