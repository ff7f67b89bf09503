--[[
  Replaces a start's token reservation with the call's real usage (reserve, then settle), while the
  reservation is still inside the window.

  Input:
    KEYS[1] tokens   ZSET permit id -> start time
    KEYS[2] amounts  HASH permit id -> tokens
    KEYS[3] state    HASH tokensTotal
    ARGV[1] permit id
    ARGV[2] actual tokens

  Output: the window's token total after settling
]]
local previous = redis.call('HGET', KEYS[2], ARGV[1])
local total = tonumber(redis.call('HGET', KEYS[3], 'tokensTotal') or '0')
if previous and redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local actual = math.max(0, tonumber(ARGV[2]))
  total = math.max(0, total + actual - tonumber(previous))
  redis.call('HSET', KEYS[2], ARGV[1], actual)
  redis.call('HSET', KEYS[3], 'tokensTotal', total)
end
return total
