--[[
  AIMD's multiplicative decrease on a provider 429, shared by every instance: at most once per
  cooldown (one overload's burst of 429s counts once), after bringing the additive recovery up to
  date. A request 429 lowers concurrency and RPM; a token 429 lowers TPM (or RPM with no TPM limit).

  Input:
    KEYS[1] state  HASH concurrency, rpm, tpm, lastDecreaseAt, quietSince, decreases
    ARGV[1] kind ('requests' | 'tokens' | 'burst': the RPM alone)
    ARGV[2] configured max concurrency
    ARGV[3] configured max RPM
    ARGV[4] configured max TPM (0 = off)
    ARGV[5] decrease factor (0 < f < 1)
    ARGV[6] cooldown ms
    ARGV[7] quiet period ms
    ARGV[8] concurrency step
    ARGV[9] rpm step
    ARGV[10] tpm step

  Output: { decreased (1|0), concurrency, rpm, tpm, decreases, now }
]]
--- @include "includes/aimdRecovery"

local state = KEYS[1]
local kind = ARGV[1]
local maxConcurrent, maxRpm, maxTpm = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local factor, cooldownMs, quietMs = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local concurrencyStep, rpmStep, tpmStep = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local fields = redis.call('HMGET', state, 'concurrency', 'rpm', 'tpm', 'quietSince', 'lastDecreaseAt', 'decreases')
local concurrency = math.min(tonumber(fields[1] or maxConcurrent), maxConcurrent)
local rpm = math.min(tonumber(fields[2] or maxRpm), maxRpm)
local tpm = math.min(tonumber(fields[3] or maxTpm), maxTpm)
local quietSince = tonumber(fields[4] or '0')
local lastDecreaseAt = tonumber(fields[5] or '0')
local decreases = tonumber(fields[6] or '0')

concurrency, rpm, tpm = aimdRecovery(concurrency, rpm, tpm, quietSince, now, quietMs,
  maxConcurrent, maxRpm, maxTpm, concurrencyStep, rpmStep, tpmStep)

local decreased = 0
if now - lastDecreaseAt >= cooldownMs then
  decreased = 1
  lastDecreaseAt = now
  decreases = decreases + 1
  if kind == 'tokens' and maxTpm > 0 then
    tpm = math.max(1, math.floor(tpm * factor))
  else
    if kind == 'requests' then concurrency = math.max(1, math.floor(concurrency * factor)) end
    rpm = math.max(1, math.floor(rpm * factor))
  end
end
-- Every 429 restarts the quiet period the next additive step waits for.
redis.call('HSET', state, 'concurrency', concurrency, 'rpm', rpm, 'tpm', tpm, 'quietSince', now,
  'lastDecreaseAt', lastDecreaseAt, 'decreases', decreases)
return { decreased, concurrency, rpm, tpm, decreases, now }
