--[[
  Gives calls' concurrency slots back: removes their leases. Idempotent (a lease already gone —
  released, expired, or never granted — is skipped), so an instance may send it again until Redis
  answers, and send it for a start whose answer it never got. When an instance was blocked on
  concurrency lately (tryStart-7.lua marks it), tells every instance on the release channel, so the
  waiting queues try again at once instead of at their next poll. Every release is announced on the
  load channel as "<stamp> <active>" (see tryStart-7.lua).

  Input:
    KEYS[1] leases  ZSET permit id -> lease expiry
    KEYS[2] state   HASH concurrencyWaitUntil (ms, Redis time)
    ARGV[1] release channel
    ARGV[2] load channel
    ARGV[3..] permit ids

  Output: how many of the leases were held
]]
local removed = 0
for index = 3, #ARGV do
  removed = removed + redis.call('ZREM', KEYS[1], ARGV[index])
end
if removed > 0 then
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local stamp = now .. '.' .. string.format('%03d', tonumber(time[2]) % 1000)
  local waitUntil = tonumber(redis.call('HGET', KEYS[2], 'concurrencyWaitUntil') or '0')
  if waitUntil > now then redis.call('PUBLISH', ARGV[1], ARGV[3]) end
  -- Leases past their expiry still count here: an announcement may overstate, never understate.
  redis.call('PUBLISH', ARGV[2], stamp .. ' ' .. redis.call('ZCARD', KEYS[1]))
end
return removed
