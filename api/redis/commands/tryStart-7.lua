--[[
  Starts up to N provider calls of one instance, each only if every shared limit allows it now
  (checked again after each start), using Redis's own clock, and only if no other instance's
  waiting head call comes before this instance's head in the priority order. One script for the
  calls waiting at an instance's head, so that a slow round trip is paid once per batch.

  Input:
    KEYS[1] leases    ZSET  permit id -> lease expiry (ms, Redis time)
    KEYS[2] starts    ZSET  permit id -> start time (ms): the rolling RPM window
    KEYS[3] tokens    ZSET  permit id -> start time (ms): the rolling TPM window
    KEYS[4] amounts   HASH  permit id -> tokens reserved (then settled) for that start
    KEYS[5] state     HASH  heldUntil, tokensTotal, concurrencyWaitUntil and the AIMD state
                            (concurrency, rpm, tpm, lastDecreaseAt, quietSince, decreases)
    KEYS[6] heads     ZSET  instance id -> order key of its waiting head call (ms, Redis time;
                            smaller goes first: first enqueued + rank x aging step)
    KEYS[7] headsUntil ZSET instance id -> when that head lapses unless asked again (ms)

    ARGV[1]  N: how many calls to start, at most (their permit ids come last, ARGV[21..20+N])
    ARGV[2]  estimated tokens (prompt + max output)
    ARGV[3]  lease ms (the holder renews it while the call runs)
    ARGV[4]  enforcement window ms (60 000 + the safety margin)
    ARGV[5]  reported window ms (60 000: what currentRPM counts)
    ARGV[6]  spreading sub-window ms (0 = off)
    ARGV[7]  configured max concurrency
    ARGV[8]  configured max RPM
    ARGV[9]  configured max TPM (0 = off)
    ARGV[10] AIMD quiet period ms
    ARGV[11] AIMD concurrency step
    ARGV[12] AIMD rpm step
    ARGV[13] AIMD tpm step
    ARGV[14] poll ms: how soon to ask again when blocked on concurrency (a release elsewhere)
    ARGV[15] this instance's id
    ARGV[16] the call's order key (ms, Redis time), or '' for none
    ARGV[17] head ttl ms: a head not asked again within this after its retryAt lapses
    ARGV[18] load channel: a start is announced there as
             "<stamp> <active> <starts in the window> <started> <calls still waiting: 1 or 0>",
             so that every instance knows the cluster's calls in flight at the moment Redis is lost
    ARGV[19] the shared state's epoch this instance last saw, or '' for none (a new instance)
    ARGV[20] reset grace ms: how long no call starts after Redis lost the shared state (a restart,
             a FLUSHALL) while calls ran — one renewal period, in which their holders write their
             leases back; without it the cluster would start up to C calls beside them
    ARGV[21..20+N] the permit ids, one per start asked for (unique across instances), in order

  Output: { started (how many of the N, the first ones), retryAt (ms, Redis time: when the next
            may start; 0 when all N started), stamp, active,
            startsLastMinute, tokensLastMinute, concurrency, rpm, tpm, heldUntil, decreases, epoch,
            startsAvailable (what the RPM window and its sub-window still allow now) }
          (stamp: Redis time in ms with the microseconds as a fraction, "1796220807048.696")
]]
--- @include "includes/aimdRecovery"

local leases, starts, tokens, amounts, state = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local heads, headsUntil = KEYS[6], KEYS[7]
local asked = tonumber(ARGV[1])
local firstId = 21
local estimated = tonumber(ARGV[2])
local leaseMs = tonumber(ARGV[3])
local windowMs = tonumber(ARGV[4])
local reportMs = tonumber(ARGV[5])
local burstMs = tonumber(ARGV[6])
local maxConcurrent = tonumber(ARGV[7])
local maxRpm = tonumber(ARGV[8])
local maxTpm = tonumber(ARGV[9])
local quietMs = tonumber(ARGV[10])
local concurrencyStep = tonumber(ARGV[11])
local rpmStep = tonumber(ARGV[12])
local tpmStep = tonumber(ARGV[13])
local pollMs = tonumber(ARGV[14])
local instance = ARGV[15]
local orderKey = tonumber(ARGV[16])
local headTtlMs = tonumber(ARGV[17])
local loadChannel = ARGV[18]
local knownEpoch = ARGV[19] or ''
local resetGraceMs = tonumber(ARGV[20] or '0')

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
-- Redis time in ms to the microsecond: what orders this news against every other script's (news of
-- one millisecond is common: thousands of scripts run in one).
local stamp = now .. '.' .. string.format('%03d', tonumber(time[2]) % 1000)

-- Leases of holders that stopped renewing (a killed instance) give their slots back here.
redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
redis.call('ZREMRANGEBYSCORE', starts, '-inf', now - windowMs)

-- Token reservations leave the window with the start they belong to.
local total = tonumber(redis.call('HGET', state, 'tokensTotal') or '0')
local expired = redis.call('ZRANGEBYSCORE', tokens, '-inf', now - windowMs)
if #expired > 0 then
  for _, member in ipairs(expired) do
    total = total - tonumber(redis.call('HGET', amounts, member) or '0')
  end
  redis.call('HDEL', amounts, unpack(expired))
  redis.call('ZREMRANGEBYSCORE', tokens, '-inf', now - windowMs)
  if total < 0 then total = 0 end
  redis.call('HSET', state, 'tokensTotal', total)
end

-- AIMD: the effective limits, with additive recovery computed lazily from Redis time.
local fields = redis.call('HMGET', state, 'concurrency', 'rpm', 'tpm', 'quietSince', 'heldUntil', 'decreases')
local concurrency = math.min(tonumber(fields[1] or maxConcurrent), maxConcurrent)
local rpm = math.min(tonumber(fields[2] or maxRpm), maxRpm)
local tpm = math.min(tonumber(fields[3] or maxTpm), maxTpm)
local quietSince = tonumber(fields[4] or '0')
local heldUntil = tonumber(fields[5] or '0')
local decreases = tonumber(fields[6] or '0')
if concurrency < maxConcurrent or rpm < maxRpm or tpm < maxTpm then
  local steps
  concurrency, rpm, tpm, steps = aimdRecovery(concurrency, rpm, tpm, quietSince, now, quietMs,
    maxConcurrent, maxRpm, maxTpm, concurrencyStep, rpmStep, tpmStep)
  if steps > 0 then
    redis.call('HSET', state, 'concurrency', concurrency, 'rpm', rpm, 'tpm', tpm,
      'quietSince', quietSince + steps * quietMs)
  end
end
concurrency = math.max(1, concurrency)
rpm = math.max(1, rpm)
if maxTpm > 0 then tpm = math.max(1, tpm) end
-- The spreading sub-window's allowance (0: spreading off).
local burst = 0
if burstMs > 0 and burstMs < windowMs then burst = math.max(1, math.ceil(rpm * burstMs / windowMs)) end

local active = redis.call('ZCARD', leases)
-- The state's epoch: written with the state, so a state that vanished (a restart, a FLUSHALL) comes
-- back under a new one. An instance that knew the old one says so: every start then waits one
-- renewal period (set once per epoch), while running calls' leases are written back.
local epoch = redis.call('HGET', state, 'epoch')
if not epoch then
  epoch = stamp
  redis.call('HSET', state, 'epoch', epoch)
end
if knownEpoch ~= '' and knownEpoch ~= epoch and resetGraceMs > 0 then
  redis.call('HSETNX', state, 'resetUntil', now + resetGraceMs)
end
local resetUntil = tonumber(redis.call('HGET', state, 'resetUntil') or '0')
if resetUntil > heldUntil then heldUntil = resetUntil end

-- When the next start may happen (0: now), given the starts, leases and reservations so far.
local function nextStartAt()
  if heldUntil > now then return heldUntil end
  if active >= concurrency then
    -- A release on another instance can open a slot at any time; the earliest lease expiry bounds
    -- it. Marked so releases announce themselves on the release channel while someone waits.
    local at = now + pollMs
    redis.call('HSET', state, 'concurrencyWaitUntil', now + pollMs * 4)
    local first = redis.call('ZRANGE', leases, 0, 0, 'WITHSCORES')
    if first[2] and tonumber(first[2]) < at then at = tonumber(first[2]) end
    return at
  end
  local at = 0
  -- "At most L starts in any window W" holds iff the L-th most recent start is at least W old.
  local count = redis.call('ZCARD', starts)
  if count >= rpm then
    local kth = redis.call('ZREVRANGE', starts, rpm - 1, rpm - 1, 'WITHSCORES')
    at = math.max(at, tonumber(kth[2]) + windowMs)
  end
  if burst > 0 then
    if count >= burst then
      local kth = redis.call('ZREVRANGE', starts, burst - 1, burst - 1, 'WITHSCORES')
      local burstAt = tonumber(kth[2]) + burstMs
      if burstAt > now then at = math.max(at, burstAt) end
    end
  end
  if maxTpm > 0 then
    local wanted = math.min(estimated, tpm)
    if total + wanted > tpm then
      -- The earliest time enough reservations have left the window for this one to fit.
      local remaining = total
      local entries = redis.call('ZRANGE', tokens, 0, -1, 'WITHSCORES')
      for index = 1, #entries, 2 do
        remaining = remaining - tonumber(redis.call('HGET', amounts, entries[index]) or '0')
        if remaining + wanted <= tpm then
          at = math.max(at, tonumber(entries[index + 1]) + windowMs)
          break
        end
      end
    end
  end
  if at <= now then at = 0 end
  return at
end

local retryAt = nextStartAt()

-- One order across instances: the limits may allow a start, but an earlier call waiting on another
-- instance takes it (that instance asks again within its poll). Heads that stopped asking lapse.
if orderKey then
  local lapsed = redis.call('ZRANGEBYSCORE', headsUntil, '-inf', now)
  if #lapsed > 0 then
    redis.call('ZREM', heads, unpack(lapsed))
    redis.call('ZREM', headsUntil, unpack(lapsed))
  end
  if retryAt == 0 then
    local best = redis.call('ZRANGE', heads, 0, 1, 'WITHSCORES')
    for index = 1, #best, 2 do
      if best[index] ~= instance then
        if tonumber(best[index + 1]) < orderKey then retryAt = now + pollMs end
        break
      end
    end
  end
end

-- Each start is checked against what the ones before it in this batch took.
local started = 0
while retryAt == 0 and started < asked do
  local id = ARGV[firstId + started]
  started = started + 1
  redis.call('ZADD', leases, now + leaseMs, id)
  redis.call('ZADD', starts, now, id)
  if maxTpm > 0 then
    redis.call('ZADD', tokens, now, id)
    redis.call('HSET', amounts, id, estimated)
    total = total + estimated
  end
  active = active + 1
  if started < asked then retryAt = nextStartAt() end
end
if started > 0 then
  redis.call('PEXPIRE', starts, windowMs * 2)
  if maxTpm > 0 then redis.call('HSET', state, 'tokensTotal', total) end
end

if orderKey then
  if started == asked then
    redis.call('ZREM', heads, instance)
    redis.call('ZREM', headsUntil, instance)
  else
    -- Calls still wait here: this head keeps its place in the order.
    redis.call('ZADD', heads, orderKey, instance)
    redis.call('ZADD', headsUntil, math.max(retryAt, now) + headTtlMs, instance)
    redis.call('PEXPIRE', heads, windowMs)
    redis.call('PEXPIRE', headsUntil, windowMs)
  end
end

local startsLastMinute = redis.call('ZCOUNT', starts, '(' .. (now - reportMs), '+inf')
-- What the rate windows still allow now, concurrency aside (admission's room reads it).
-- (The starts set holds only the enforcement window: it was trimmed above.)
local available = rpm - redis.call('ZCARD', starts)
if burst > 0 then
  available = math.min(available, burst - redis.call('ZCOUNT', starts, '(' .. (now - burstMs), '+inf'))
end
if available < 0 then available = 0 end
if started > 0 then
  -- Then how many started and whether calls still wait anywhere (1) or not (0): every instance
  -- measures from these the gaps between the cluster's starts while calls waited, the wait a
  -- call at the front of the one order has for its start (run-ledger.ts).
  local waiting = 0
  if started < asked or redis.call('ZCARD', heads) > 0 then waiting = 1 end
  redis.call('PUBLISH', loadChannel, stamp .. ' ' .. active .. ' ' .. startsLastMinute .. ' ' .. started .. ' ' .. waiting)
end
if heldUntil <= now then heldUntil = 0 end
return { started, retryAt, stamp, active, startsLastMinute, total, concurrency, rpm, tpm, heldUntil, decreases, epoch,
  available }
