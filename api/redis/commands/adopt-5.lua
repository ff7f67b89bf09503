--[[
  Hands the shared windows the calls an instance started on its own while Redis was unreachable,
  so the instances that are already back count them: their starts (at their real times), their
  token reservations, and leases for those still in flight.

  Input:
    KEYS[1..5] leases, starts, tokens, amounts, state (as in tryStart-7.lua)
    ARGV[1] lease ms
    ARGV[2] enforcement window ms
    ARGV[3] load channel: the leases in force afterwards are announced as "<stamp> <active>"
    ARGV[4..] groups of four: permit id, ms since it started, tokens, still running (1|0)

  Output: Redis time (ms)
]]
local leases, starts, tokens, amounts, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local leaseMs, windowMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local stamp = now .. '.' .. string.format('%03d', tonumber(time[2]) % 1000)
local total = tonumber(redis.call('HGET', state, 'tokensTotal') or '0')
for index = 4, #ARGV, 4 do
  local id = ARGV[index]
  local at = now - tonumber(ARGV[index + 1])
  local amount = tonumber(ARGV[index + 2])
  if at > now - windowMs then
    redis.call('ZADD', starts, at, id)
    if amount > 0 then
      redis.call('ZADD', tokens, at, id)
      redis.call('HSET', amounts, id, amount)
      total = total + amount
    end
  end
  if ARGV[index + 3] == '1' then redis.call('ZADD', leases, now + leaseMs, id) end
end
redis.call('HSET', state, 'tokensTotal', total)
redis.call('PEXPIRE', starts, windowMs * 2)
redis.call('PUBLISH', ARGV[3], stamp .. ' ' .. redis.call('ZCARD', leases))
return now
