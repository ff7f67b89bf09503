--[[
  Appends the events of one or more runs to their streams in one call (what an instance's runs
  produced in one event-loop turn), each with the run's event id as the entry id (<id>-0), so a
  reader resumes with XREAD from "<Last-Event-ID>-0"; keeps each stream and run description
  expiring: the live expiry while the run lives, the retention once its terminal event is written.
  Fencing (durable chats): a writer that names itself (ARGV[4]) appends to a run only while the
  run's description still names it as the owner with that epoch, so an owner that was presumed dead
  and replaced writes nothing when it wakes up.

  Input: (the caller passes the number of keys first: two per run)
    KEYS[2i-1] run i's event stream
    KEYS[2i]   run i's description (hash: userId, conversationId, owner, epoch, terminal, checkpoint)
    ARGV[1] approximate length bound of each stream (MAXLEN ~)
    ARGV[2] expiry while the run lives, ms
    ARGV[3] expiry once its terminal event is written (the retention), ms
    ARGV[4] the writer's instance id ('' for no fencing)
    then for each run i, in the order of KEYS: the writer's epoch for it, the number m of its
    events, and m times: event id (a positive integer, increasing), event name, event data (JSON),
    "1" when it is the terminal event else "0"

  Output:
    one reply per run: 1 when appended (an id not above the last one is a duplicate, skipped),
    -1 when fenced off (nothing of it appended)
]]
local maxLen, liveMs, retentionMs, writer = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local replies = {}
local at = 5
for run = 1, #KEYS / 2 do
  local stream, meta = KEYS[2 * run - 1], KEYS[2 * run]
  local epoch, count = ARGV[at], tonumber(ARGV[at + 1])
  local first = at + 2
  at = first + count * 4
  local fenced = false
  if writer ~= '' then
    local owner = redis.call('HGET', meta, 'owner')
    local ownerEpoch = redis.call('HGET', meta, 'epoch') or '1'
    fenced = owner and (owner ~= writer or tonumber(ownerEpoch) ~= tonumber(epoch))
  end
  if fenced then
    replies[run] = -1
  else
    local expiry = liveMs
    for event = first, at - 1, 4 do
      local added = redis.pcall('XADD', stream, 'MAXLEN', '~', maxLen, ARGV[event] .. '-0',
        'event', ARGV[event + 1], 'data', ARGV[event + 2])
      if ARGV[event + 3] == '1' and not (type(added) == 'table' and added.err) then
        redis.call('HSET', meta, 'terminal', ARGV[event])
        expiry = retentionMs
      end
    end
    redis.call('PEXPIRE', stream, expiry)
    redis.call('PEXPIRE', meta, expiry)
    replies[run] = 1
  end
end
return replies
