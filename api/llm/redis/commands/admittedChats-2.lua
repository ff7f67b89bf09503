--[[
  Records how many chats this instance holds (admitted, or being decided) and returns the cluster's
  total, so that every instance's admission decides on the same, current count. The count is
  absolute, not an increment: a lost write is corrected by the instance's next one, and an instance
  that stopped heartbeating (killed) drops out of the total and its field is removed.

  Input:
    KEYS[1] admitted   HASH  instance id -> chats it holds
    KEYS[2] instances  ZSET  instance id -> heartbeat expiry (ms, Redis time; heartbeat-6.lua)
    ARGV[1] this instance's id
    ARGV[2] the chats it holds now
    ARGV[3] how long the hash outlives its last write (ms)

  Output: the chats held by live instances, this one's included
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local self = ARGV[1]
redis.call('HSET', KEYS[1], self, ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))

local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for index = 1, #fields, 2 do
  local id = fields[index]
  local alive = id == self
  if not alive then
    local expiry = redis.call('ZSCORE', KEYS[2], id)
    alive = expiry and tonumber(expiry) > now
  end
  if alive then
    total = total + tonumber(fields[index + 1])
  else
    redis.call('HDEL', KEYS[1], id)
  end
end
return total
