--[[
  Claims an orphaned durable run (its owner gone, or "" after a hand-over): a compare-and-set on
  the owner, so of several instances that saw the same orphan exactly one wins. The epoch (the
  fencing token) goes up by one: the old owner's writes are refused from now on.

  Input:
    KEYS[1] the run's description (hash: userId, conversationId, owner, epoch, terminal, checkpoint)
    KEYS[2] the durable runs (hash: run id -> owner instance id)
    ARGV[1] run id
    ARGV[2] the owner the claimer saw (the dead instance's id, or "")
    ARGV[3] the claimer's instance id

  Output:
    {epoch, checkpoint JSON} when claimed; false when someone else did, or there is nothing to
    adopt (the run ended or expired: it leaves the durable runs)
]]
local checkpoint = redis.call('HGET', KEYS[1], 'checkpoint')
if not checkpoint or redis.call('HEXISTS', KEYS[1], 'terminal') == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return false
end
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
if owner ~= ARGV[2] then return false end
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '1') + 1
redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'epoch', epoch)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return {epoch, checkpoint}
