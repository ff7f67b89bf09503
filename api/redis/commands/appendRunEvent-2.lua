--[[
  Appends one event of a run to its stream, with the run's event id as the entry id (<id>-0), so
  a reader resumes with XREAD from "<Last-Event-ID>-0"; keeps the stream and the run's description
  expiring: ttl while the run lives, the retention once its terminal event is written.

  Input:
    KEYS[1] the run's event stream
    KEYS[2] the run's description (hash: userId, conversationId, owner, terminal)
    ARGV[1] event id (a positive integer, increasing)
    ARGV[2] event name
    ARGV[3] event data (JSON)
    ARGV[4] approximate length bound of the stream (MAXLEN ~)
    ARGV[5] expiry, ms
    ARGV[6] "1" when this is the terminal event

  Output:
    1, or 0 when the id was not above the last one (a duplicate: ignored)
]]
local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], ARGV[1] .. '-0', 'event', ARGV[2], 'data', ARGV[3])
if type(added) == 'table' and added.err then return 0 end
if ARGV[6] == '1' then redis.call('HSET', KEYS[2], 'terminal', ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
