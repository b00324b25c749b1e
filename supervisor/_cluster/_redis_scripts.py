"""The store's atomic changes: one Lua script each, so a change costs one round trip.

A lease is `"<node> <epoch>"` under `lease:<id>`; the epoch counter `epoch:<id>` only grows. A
record is written only by the node whose lease the same script checks. A session is indexed twice,
each a sorted set scored by when its record expires: by its whole principal (`who:`, for caps
and revocation of one principal) and by its client id alone (`client:`, for revoking a client
with every issuer and subject it came with).
"""

# Claim a lease. KEYS: lease, epoch. ARGV: node, lease ms, epoch-key ms (0: keep), the lease value
# the caller saw and may replace ('' = only if free). Returns {won, epoch, owner}.
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, ep = string.match(cur, '^(%S+) (%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tonumber(ep), owner}
  end
  if cur ~= ARGV[4] then return {0, tonumber(ep), owner} end
end
local e = redis.call('INCR', KEYS[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. e, 'PX', ARGV[2])
return {1, e, ARGV[1]}
"""

# Is the lease ours? Ours too if it lapsed and nobody claimed since (the epoch counter unmoved).
_MINE = """
local function mine(lease, epochkey, node, epoch, ms)
  local cur = redis.call('GET', lease)
  if cur == node .. ' ' .. epoch then return true end
  if not cur then
    local seen = redis.call('GET', epochkey)
    -- Lapsed, and nobody claimed it since; or Redis lost its data (restarted without persistence).
    if seen == epoch or not seen then
      redis.call('SET', epochkey, epoch)
      redis.call('SET', lease, node .. ' ' .. epoch, 'PX', ms)
      return true
    end
  end
  return false
end
"""

# Renew leases (and keep their records). KEYS: lease, epoch, record per session. ARGV: node,
# lease ms, record ms (0: keep), then an epoch per session. Returns the 1-based indexes lost, and
# those whose record is missing (Redis lost it: the holder writes it again).
RENEW = (
    _MINE
    + """
local lost, missing = {}, {}
for i = 1, #ARGV - 3 do
  local lease, epochkey, rec = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  if mine(lease, epochkey, ARGV[1], ARGV[i+3], ARGV[2]) then
    redis.call('PEXPIRE', lease, ARGV[2])
    local kept = tonumber(ARGV[3]) > 0 and redis.call('PEXPIRE', rec, ARGV[3]) or redis.call('EXISTS', rec)
    if kept == 0 then table.insert(missing, i) end
  else
    table.insert(lost, i)
  end
end
return {lost, missing}
"""
)

# Write a record under the lease. KEYS: record, lease, epoch, principal index, client index ('' for
# both: no principal). ARGV: json, record ms (0: keep), node, epoch ('0': a new session, claim it),
# lease ms, session id, index score.
# Returns the epoch held, or 0 if another node holds the session.
PUT = (
    _MINE
    + """
local epoch = ARGV[4]
if epoch == '0' then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
  epoch = tostring(redis.call('INCR', KEYS[3]))
  redis.call('SET', KEYS[2], ARGV[3] .. ' ' .. epoch, 'PX', ARGV[5])
elseif not mine(KEYS[2], KEYS[3], ARGV[3], epoch, ARGV[5]) then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if KEYS[4] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6])
  redis.call('ZADD', KEYS[5], ARGV[7], ARGV[6])
end
return tonumber(epoch)
"""
)

# Let go of a lease if it is still ours. KEYS: lease. ARGV: node, epoch.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] .. ' ' .. ARGV[2] then redis.call('DEL', KEYS[1]) end
return 1
"""

# Forget a session for good. KEYS: record, lease, epoch, principal index, client index. ARGV: id.
FORGET = """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if KEYS[4] ~= '' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
end
return 1
"""
