--[[
  Saves a durable run's checkpoint (its completed agent steps) while the writer still owns the run
  with the same epoch (fencing), and lists the run among the durable ones with its owner.

  Input:
    KEYS[1] the run's description (hash: userId, conversationId, owner, epoch, terminal, checkpoint)
    KEYS[2] the durable runs (hash: run id -> owner instance id, "" once handed over)
    ARGV[1] run id
    ARGV[2] the writer's instance id
    ARGV[3] the writer's epoch
    ARGV[4] the checkpoint (JSON)
    ARGV[5] expiry of the description, ms

  Output:
    1 saved, 0 fenced off (another instance owns the run now) or the run already ended
]]
local owner = redis.call('HGET', KEYS[1], 'owner')
local epoch = redis.call('HGET', KEYS[1], 'epoch') or '1'
if owner and (owner ~= ARGV[2] or tonumber(epoch) ~= tonumber(ARGV[3])) then return 0 end
if redis.call('HEXISTS', KEYS[1], 'terminal') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'epoch', ARGV[3], 'checkpoint', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
