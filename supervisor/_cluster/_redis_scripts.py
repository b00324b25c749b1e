"""The store's atomic changes: one Lua script each, so a change costs one round trip.

Ownership is per node, not per session (issue 26): each node process holds one membership key,
`member:<node>` = its epoch (random, made when the process starts), with a TTL it renews alone.
A session's lease is `"<node> <node epoch> <epoch>"` under `lease:<id>`, with no renewal of its
own: it is good while that node's membership holds that node epoch. The session epoch counter
`epoch:<id>` only grows. A record is written only by the node whose lease the same script checks.
A session is indexed twice, each a sorted set scored by when its record expires: by its whole
principal (`who:`, for caps and revocation of one principal) and by its client id alone
(`client:`, for revoking a client with every issuer and subject it came with).

Every script touches the keys of one session, or one node's membership: none reads another
node's membership inside a script (the claimer reads it in a call of its own).
"""

# A node's membership. KEYS: member. ARGV: node epoch, ms, '1' to take it whatever it holds (a
# process starting), the next node epoch. Returns 1 (renewed), 2 (taken by a process starting),
# 3 (it had lapsed, or Redis lost it: set again under the next epoch, or found set so by a round
# whose answer was lost; what the node holds must be checked and moved over: `Holder`), 0
# (another process of the same node id holds it now).
MEMBER = """
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur and cur == ARGV[4] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 3
end
if cur and ARGV[3] ~= '1' then return 0 end
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[2])
return 3
"""

# End a node's membership if it still holds `epoch` (its channel is silent: it is gone, or cut
# off; a node cut off finds it ended at its next renewal and checks what it holds). KEYS: member.
END_MEMBER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

# Claim a lease. KEYS: lease, epoch, and the record to read once claimed (optional: a wake then
# costs one call). ARGV: holder ("<node> <node epoch>"), lease ms (0: none), epoch-key ms (0:
# keep), the lease value the caller saw and may replace ('' = only if free), the holder's
# previous value ('' for none: a lease under it is this process's own, moved over).
# Returns {won, epoch, value found or made} (and the record, '' for none, if asked: then a free
# lease is claimed only if the record exists).
CLAIM = """
local function answer(won, ep, value)
  if #KEYS >= 3 then return {won, ep, value, redis.call('GET', KEYS[3]) or ''} end
  return {won, ep, value}
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local holder, ep = string.match(cur, '^(%S+ %S+) (%d+)$')
  if holder == ARGV[1] or (holder == ARGV[5] and ARGV[5] ~= '') then
    if holder ~= ARGV[1] then
      cur = ARGV[1] .. ' ' .. ep
      redis.call('SET', KEYS[1], cur, 'KEEPTTL')
    end
    if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
    return answer(1, tonumber(ep), cur)
  end
  if cur ~= ARGV[4] then return answer(0, tonumber(ep or 0), cur) end
end
-- A wake claims only a session that has a record: the counter of one that Redis forgot (its
-- holder writes it again) must not move, or that holder would take its own lease for lost.
if #KEYS >= 3 and redis.call('EXISTS', KEYS[3]) == 0 then return {0, 0, '', ''} end
local e = redis.call('INCR', KEYS[2])
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
local value = ARGV[1] .. ' ' .. e
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], value)
end
return answer(1, e, value)
"""

# Is the lease ours? Ours too if it is under this process's `previous` holder value (moved over
# now), or if it is gone and nobody claimed since (the epoch counter unmoved: Redis lost it, or
# it expired with its record). `ms` 0: no expiry.
_MINE = """
local function mine(lease, epochkey, holder, epoch, ms, previous)
  local cur = redis.call('GET', lease)
  if cur == holder .. ' ' .. epoch then return true end
  if previous ~= '' and cur == previous .. ' ' .. epoch then
    redis.call('SET', lease, holder .. ' ' .. epoch, 'KEEPTTL')
    return true
  end
  if not cur then
    local seen = redis.call('GET', epochkey)
    if seen == epoch or not seen then
      redis.call('SET', epochkey, epoch)
      if tonumber(ms) > 0 then
        redis.call('SET', lease, holder .. ' ' .. epoch, 'PX', ms)
      else
        redis.call('SET', lease, holder .. ' ' .. epoch)
      end
      return true
    end
  end
  return false
end
"""

# Check leases (and keep their records and leases as long as a record of an awake session is
# kept). Run for every held session only when the node's membership had lapsed; else only for
# those whose record is near its expiry. KEYS: lease, epoch, record per session. ARGV: holder,
# record ms (0: no expiry), the previous holder ('' for none), then an epoch per session.
# Returns the 1-based indexes lost, those whose record is missing (Redis lost it: the holder
# writes it again), and the refs of the shared client params the kept records name (the holder
# keeps those as long: _redis_records.py).
RENEW = (
    _MINE
    + """
local lost, missing, shared = {}, {}, {}
local keep = tonumber(ARGV[2]) > 0
for i = 1, #ARGV - 3 do
  local lease, epochkey, rec = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  if mine(lease, epochkey, ARGV[1], ARGV[i+3], ARGV[2], ARGV[3]) then
    local kept
    if keep then
      redis.call('PEXPIRE', lease, ARGV[2])
      redis.call('PEXPIRE', epochkey, ARGV[2])
      kept = redis.call('PEXPIRE', rec, ARGV[2])
      if kept == 1 then
        local ref = string.match(redis.call('GET', rec), '"client_params_ref":"(%w+)"')
        if ref then table.insert(shared, ref) end
      end
    else
      kept = redis.call('EXISTS', rec)
    end
    if kept == 0 then table.insert(missing, i) end
  else
    table.insert(lost, i)
  end
end
return {lost, missing, shared}
"""
)

# Write a record under the lease. KEYS: record, lease, epoch, principal index, client index ('' for
# both, or left out: no principal, or a Redis Cluster, where the caller writes the indexes).
# ARGV: json, record ms (0: no expiry; the lease keeps as long), holder, epoch ('0': a new
# session, claim it; a lease this process holds already is its own earlier try), session id,
# index score, the holder's previous value ('' for none); and, to let go of the session once
# written (a hand-over: issue 26.4), '1', a channel and a message to publish there (the "released").
# Returns the epoch held, or 0 if another node holds the session.
PUT = (
    _MINE
    + """
local epoch = ARGV[4]
if epoch == '0' then
  local cur = redis.call('GET', KEYS[2])
  if cur then
    -- Ours already (an earlier try whose answer never came back): go on under it.
    local holder, ep = string.match(cur, '^(%S+ %S+) (%d+)$')
    if holder ~= ARGV[3] and (ARGV[7] == '' or holder ~= ARGV[7]) then return 0 end
    epoch = ep
  else
    epoch = tostring(redis.call('INCR', KEYS[3]))
  end
  if tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[2], ARGV[3] .. ' ' .. epoch, 'PX', ARGV[2])
  else
    redis.call('SET', KEYS[2], ARGV[3] .. ' ' .. epoch)
  end
elseif not mine(KEYS[2], KEYS[3], ARGV[3], epoch, ARGV[2], ARGV[7]) then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('PERSIST', KEYS[2])
end
if #KEYS >= 5 and KEYS[4] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
  redis.call('ZADD', KEYS[5], ARGV[6], ARGV[5])
end
if ARGV[8] == '1' then
  redis.call('DEL', KEYS[2])
  if ARGV[9] ~= '' then redis.call('PUBLISH', ARGV[9], ARGV[10]) end
end
return tonumber(epoch)
"""
)

# Let go of a lease if it is still ours. KEYS: lease. ARGV: holder, epoch ('' = whatever epoch
# this process holds it at: a lease left behind that no session here stands for), a channel
# and a message to publish there once let go ('' for none), the holder's previous value ('' for
# none). Returns 1 if it was ours.
RELEASE = """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local holder = string.match(cur, '^(%S+ %S+) %d+$')
local function ours(h)
  return h ~= '' and (cur == h .. ' ' .. ARGV[2] or (ARGV[2] == '' and holder == h))
end
if not ours(ARGV[1]) and not ours(ARGV[5]) then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[3] and ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
"""

# Forget a session for good. KEYS: record, lease, epoch, principal index, client index (left out
# on a Redis Cluster: the caller drops the indexes). ARGV: id.
FORGET = """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if #KEYS >= 5 and KEYS[4] ~= '' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
end
return 1
"""
