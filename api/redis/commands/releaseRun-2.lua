--[[
  Ends this instance's ownership of a durable run, if it still holds it (fencing): "finish" (the
  run wrote its terminal event: nothing is left to adopt) or "handover" (the run is unfinished:
  its owner becomes "", so any live instance may claim it at once).

  Input:
    KEYS[1] the run's description (hash: userId, conversationId, owner, epoch, terminal, checkpoint)
    KEYS[2] the durable runs (hash: run id -> owner instance id)
    ARGV[1] run id
    ARGV[2] the releasing instance id
    ARGV[3] its epoch
    ARGV[4] "finish" or "handover"

  Output:
    1 released, 0 fenced off (not the owner any more)
]]
local owner = redis.call('HGET', KEYS[1], 'owner')
local epoch = redis.call('HGET', KEYS[1], 'epoch') or '1'
if owner and (owner ~= ARGV[2] or tonumber(epoch) ~= tonumber(ARGV[3])) then return 0 end
if ARGV[4] == 'finish' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[1], 'checkpoint')
  return 1
end
redis.call('HSET', KEYS[1], 'owner', '')
redis.call('HSET', KEYS[2], ARGV[1], '')
return 1
