--[[
  AIMD's additive recovery, computed lazily from Redis time (one rule for every script that reads
  the shared limits): each limit climbs one step per quiet period since the last 429, up to its
  configured maximum.

  Returns the recovered concurrency, rpm and tpm, and how many quiet periods have passed (0 if none).
]]
local function aimdRecovery(concurrency, rpm, tpm, quietSince, now, quietMs,
    maxConcurrent, maxRpm, maxTpm, concurrencyStep, rpmStep, tpmStep)
  local steps = math.floor((now - quietSince) / quietMs)
  if steps <= 0 then return concurrency, rpm, tpm, 0 end
  return math.min(maxConcurrent, concurrency + steps * concurrencyStep),
    math.min(maxRpm, rpm + steps * rpmStep),
    math.min(maxTpm, tpm + steps * tpmStep),
    steps
end
