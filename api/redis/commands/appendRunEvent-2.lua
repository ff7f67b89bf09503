--[[
  Appends one event of a run to its stream, with the run's event id as the entry id (<id>-0), so
  a reader resumes with XREAD from "<Last-Event-ID>-0"; keeps the stream and the run's description
  expiring: ttl while the run lives, the retention once its terminal event is written.
  Fencing (durable chats): a writer that names itself (ARGV[7], ARGV[8]) appends only while the
  description still names it as the run's owner with that epoch, so an owner that was presumed dead
  and replaced writes nothing when it wakes up.

  Input:
    KEYS[1] the run's event stream
    KEYS[2] the run's description (hash: userId, conversationId, owner, epoch, terminal, checkpoint)
    ARGV[1] event id (a positive integer, increasing)
    ARGV[2] event name
    ARGV[3] event data (JSON)
    ARGV[4] approximate length bound of the stream (MAXLEN ~)
    ARGV[5] expiry, ms
    ARGV[6] "1" when this is the terminal event
    ARGV[7] the writer's instance id (optional: no fencing without it)
    ARGV[8] the writer's epoch (with ARGV[7])

  Output:
    1, 0 when the id was not above the last one (a duplicate: ignored), -1 when fenced off
]]
if ARGV[7] and ARGV[7] ~= '' then
  local owner = redis.call('HGET', KEYS[2], 'owner')
  local epoch = redis.call('HGET', KEYS[2], 'epoch') or '1'
  if owner and (owner ~= ARGV[7] or tonumber(epoch) ~= tonumber(ARGV[8])) then return -1 end
end
local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], ARGV[1] .. '-0', 'event', ARGV[2], 'data', ARGV[3])
if type(added) == 'table' and added.err then return 0 end
if ARGV[6] == '1' then redis.call('HSET', KEYS[2], 'terminal', ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
