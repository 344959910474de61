#!lua name=meteor
-- The meteor library: every step that must be atomic in Redis. Loaded with
-- FUNCTION LOAD REPLACE by the Redis engine (library.go), again whenever a
-- call finds it missing (a restart without persistence, FUNCTION FLUSH).
--
-- Keys of one channel c, with the engine's prefix P:
--   P:{c}:h  STREAM  entry <id>-0, fields d (text), t (publish time, ms)
--   P:{c}:m  HASH    top (newest id handed out), ep (epoch), tr (newest id
--                    dropped from the stream, 0 when none)
-- Ids are numbers below 2^53, exact in Lua's doubles; they are always
-- written with string.format('%d'), never tostring (which gives 1.7e+15).

local function fmt(n)
  return string.format('%d', n)
end

local function idof(entry_id)
  return tonumber(string.match(entry_id, '^(%d+)'))
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- meteor_publish(keys: h, m; args: pubsub channel, text, max messages,
-- max age in µs (0: none), meta TTL in s (with a max age), an epoch for
-- a new stream)
-- stores one message, trims the stream, and publishes
-- "<id> <prev> <epoch> <ms>\n<text>" on the channel, all in one step, so
-- that every node sees each channel's messages in id order.
-- Returns {id, epoch, ms}.
local function publish(keys, args)
  local h, m = keys[1], keys[2]
  local text = args[2]
  local maxlen, maxage, metattl = tonumber(args[3]), tonumber(args[4]), tonumber(args[5])
  local now = now_us()
  local ms = math.floor(now / 1000)
  local meta = redis.call('HMGET', m, 'top', 'ep', 'tr')
  local top = tonumber(meta[1]) or 0
  local ep = meta[2]
  local tr = tonumber(meta[3]) or 0
  if not ep then
    -- No record of the stream (new, flushed, expired): a new epoch, and
    -- no stream entries from before it.
    ep = args[6]
    redis.call('DEL', h)
  end
  local id = now
  if id <= top then
    id = top + 1
  end
  local xlen = redis.call('XLEN', h)
  if xlen == 0 and top > 0 then
    tr = top -- everything handed out before is gone (cleared, expired)
  end
  if maxage > 0 and xlen > 0 then
    local cut = fmt(now - maxage)
    local old = redis.call('XREVRANGE', h, '(' .. cut .. '-0', '-', 'COUNT', 1)
    if #old > 0 then
      local oid = idof(old[1][1])
      if oid > tr then tr = oid end
      redis.call('XTRIM', h, 'MINID', cut .. '-0')
      xlen = redis.call('XLEN', h)
    end
  end
  if maxlen > 0 then
    local drop = xlen + 1 - maxlen
    if drop > 0 then
      local olds = redis.call('XRANGE', h, '-', '+', 'COUNT', drop)
      local oid = idof(olds[#olds][1])
      if oid > tr then tr = oid end
    end
    redis.call('XADD', h, 'MAXLEN', maxlen, fmt(id) .. '-0', 'd', text, 't', fmt(ms))
    if maxage > 0 then
      redis.call('PEXPIRE', h, math.floor(maxage / 1000) + 1000)
    else
      redis.call('PERSIST', h)
    end
  else
    redis.call('DEL', h)
    tr = id -- kept nowhere: dropped at once
  end
  redis.call('HSET', m, 'top', fmt(id), 'ep', ep, 'tr', fmt(tr))
  if maxage > 0 then
    redis.call('EXPIRE', m, metattl)
  else
    redis.call('PERSIST', m) -- messages kept forever: so is their stream
  end
  redis.call('PUBLISH', args[1], fmt(id) .. ' ' .. fmt(top) .. ' ' .. ep .. ' ' .. fmt(ms) .. '\n' .. text)
  return {fmt(id), ep, fmt(ms)}
end

-- meteor_history(keys: h, m; args: kind (none, after, last, all), after
-- id, after epoch, last count, max age in µs) reads one channel's stream
-- state and the messages the query selects, as one snapshot, leaving
-- out messages older than the age limit.
-- Returns {} for a channel with no record, else
-- {epoch, top, trimmed, count, first, last, id1, ms1, text1, ...}.
local function history(keys, args)
  local h, m = keys[1], keys[2]
  local kind = args[1]
  local after, after_ep = tonumber(args[2]) or 0, args[3]
  local last, maxage = tonumber(args[4]) or 0, tonumber(args[5]) or 0
  local meta = redis.call('HMGET', m, 'top', 'ep', 'tr')
  local ep = meta[2]
  if not ep then
    return {}
  end
  local top = tonumber(meta[1]) or 0
  local tr = tonumber(meta[3]) or 0
  local from = 0 -- smallest id still within the age limit
  local xlen = redis.call('XLEN', h)
  local aged = 0
  if maxage > 0 and xlen > 0 then
    from = now_us() - maxage
    local old = redis.call('XRANGE', h, '-', '(' .. fmt(from) .. '-0')
    aged = #old
    if aged > 0 then
      local oid = idof(old[aged][1])
      if oid > tr then tr = oid end
    end
  end
  local count = xlen - aged
  if count == 0 then
    tr = top
  end
  local first, lastid = 0, 0
  if count > 0 then
    first = idof(redis.call('XRANGE', h, fmt(from) .. '-0', '+', 'COUNT', 1)[1][1])
    lastid = idof(redis.call('XREVRANGE', h, '+', '-', 'COUNT', 1)[1][1])
  end
  local out = {ep, fmt(top), fmt(tr), count, fmt(first), fmt(lastid)}
  if count == 0 or kind == 'none' then
    return out
  end
  local entries
  if kind == 'all' or (kind == 'after' and after_ep ~= '' and after_ep ~= ep) then
    entries = redis.call('XRANGE', h, fmt(from) .. '-0', '+')
  elseif kind == 'after' then
    local start = after + 1
    if start < from then start = from end
    entries = redis.call('XRANGE', h, fmt(start) .. '-0', '+')
  elseif kind == 'last' then
    if last <= 0 then
      return out
    end
    local rev = redis.call('XREVRANGE', h, '+', fmt(from) .. '-0', 'COUNT', last)
    entries = {}
    for i = #rev, 1, -1 do
      entries[#entries + 1] = rev[i]
    end
  else
    return redis.error_reply('meteor_history: unknown kind ' .. tostring(kind))
  end
  for _, e in ipairs(entries) do
    local f = e[2]
    local d, t = '', '0'
    for i = 1, #f, 2 do
      if f[i] == 'd' then d = f[i + 1] elseif f[i] == 't' then t = f[i + 1] end
    end
    out[#out + 1] = string.match(e[1], '^(%d+)')
    out[#out + 1] = t
    out[#out + 1] = d
  end
  return out
end

-- meteor_clear(keys: h, m) drops the stored messages of one channel,
-- keeping its epoch and newest id so that a resuming client is told of
-- its gap.
local function clear(keys, args)
  local h, m = keys[1], keys[2]
  local top = redis.call('HGET', m, 'top')
  redis.call('DEL', h)
  if top then
    redis.call('HSET', m, 'tr', top)
  end
  return 1
end

redis.register_function('meteor_publish', publish)
redis.register_function{function_name = 'meteor_history', callback = history, flags = {'no-writes'}}
redis.register_function('meteor_clear', clear)
