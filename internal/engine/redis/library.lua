#!lua name=meteor
-- The meteor library: every step that must be atomic in Redis. Loaded with
-- FUNCTION LOAD REPLACE by the Redis engine (library.go), again whenever a
-- call finds it missing (a restart without persistence, FUNCTION FLUSH).
--
-- Keys of one channel c, with the engine's prefix P:
--   P:{c}:h  STREAM  entry <id>-0, fields d (text), t (publish time, ms),
--                    p (the id before it in the channel)
--   P:{c}:m  HASH    top (newest id handed out), ep (epoch)
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

-- meteor_publish_limits(keys: h1, m1, h2, m2, ...; args: for each message its
-- pub/sub channel, its text, an epoch for a new stream, and its channel's
-- limits: max messages, max age in µs (0: none), meta TTL in s (with a
-- max age); a channel's first message in the call gives them) stores and
-- publishes a batch of messages, in order, in one step, so that every
-- node sees each channel's messages in id order, and a batch costs one
-- call. Each message is an XADD and a PUBLISH of
-- "<id> <prev> <epoch> <ms>\n<text>"; each channel's meta is read once
-- and written once per call, its stream trimmed by age and its expiry
-- renewed once.
-- Each entry keeps its predecessor's id (p): the stream is contiguous and
-- trimmed from its head only, so its first entry's p is the newest id it
-- dropped, which no publish has to look up.
-- Returns {id1, epoch1, ms1, id2, ...}.
local function publish_limits(keys, args)
  local now = now_us()
  local sms = fmt(math.floor(now / 1000))
  local chans, order = {}, {}
  local out = {}
  for i = 1, #keys / 2 do
    local h, m = keys[2 * i - 1], keys[2 * i]
    local a = (i - 1) * 6
    local c = chans[m]
    if not c then
      local meta = redis.call('HMGET', m, 'top', 'ep')
      c = {h = h, m = m, top = tonumber(meta[1]) or 0, ep = meta[2],
           maxlen = tonumber(args[a + 4]), maxage = tonumber(args[a + 5]), metattl = tonumber(args[a + 6])}
      if not c.ep then
        -- No record of the stream (new, flushed, expired): a new epoch,
        -- and no stream entries from before it.
        c.ep = args[a + 3]
        redis.call('DEL', h)
      end
      chans[m] = c
      order[#order + 1] = c
    end
    local prev = c.top
    local id = now
    if id <= prev then
      id = prev + 1
    end
    c.top = id
    local sid, sprev = fmt(id), fmt(prev)
    if c.maxlen > 0 then
      -- Approximate trimming drops whole nodes of the stream only (exact
      -- trimming costs most of a publish); history reads the newest
      -- maxlen entries, so the few extra are never seen.
      redis.call('XADD', h, 'MAXLEN', '~', c.maxlen, sid .. '-0', 'd', args[a + 2], 't', sms, 'p', sprev)
    end
    redis.call('PUBLISH', args[a + 1], sid .. ' ' .. sprev .. ' ' .. c.ep .. ' ' .. sms .. '\n' .. args[a + 2])
    out[#out + 1] = sid
    out[#out + 1] = c.ep
    out[#out + 1] = sms
  end
  for _, c in ipairs(order) do
    redis.call('HSET', c.m, 'top', fmt(c.top), 'ep', c.ep)
    if c.maxlen <= 0 then
      redis.call('DEL', c.h) -- kept nowhere
    end
    if c.maxage > 0 then
      if c.maxlen > 0 then
        redis.call('XTRIM', c.h, 'MINID', fmt(now - c.maxage) .. '-0')
        redis.call('PEXPIRE', c.h, math.floor(c.maxage / 1000) + 1000)
      end
      redis.call('EXPIRE', c.m, c.metattl)
    else
      redis.call('PERSIST', c.h)
      redis.call('PERSIST', c.m) -- messages kept forever: so is their stream
    end
  end
  return out
end

-- meteor_publish(keys as above; args: max messages, max age in µs, meta
-- TTL in s, then for each message its pub/sub channel, its text and an
-- epoch) is meteor_publish_limits with one set of limits for every
-- channel: what the nodes of the version before per-channel limits call,
-- kept so that they go on working during a rolling upgrade.
local function publish(keys, args)
  local per = {}
  for i = 1, #keys / 2 do
    local a = 3 + (i - 1) * 3
    per[#per + 1] = args[a + 1]
    per[#per + 1] = args[a + 2]
    per[#per + 1] = args[a + 3]
    per[#per + 1] = args[1]
    per[#per + 1] = args[2]
    per[#per + 1] = args[3]
  end
  return publish_limits(keys, per)
end

-- fields returns an entry's text, time and predecessor.
local function fields(f)
  local d, t, p = '', '0', '0'
  for i = 1, #f, 2 do
    local k = f[i]
    if k == 'd' then d = f[i + 1] elseif k == 't' then t = f[i + 1] elseif k == 'p' then p = f[i + 1] end
  end
  return d, t, p
end

-- meteor_history(keys: h, m; args: kind (none, after, last, all), after
-- id, after epoch, last count, max age in µs, max messages) reads one
-- channel's stream state and the messages the query selects, as one
-- snapshot: the newest max messages entries (the stream, trimmed
-- approximately, may hold a few more), leaving out those older than the
-- age limit.
-- Returns {} for a channel with no record, else
-- {epoch, top, trimmed, count, first, last, id1, ms1, text1, ...}.
local function history(keys, args)
  local h, m = keys[1], keys[2]
  local kind = args[1]
  local after, after_ep = tonumber(args[2]) or 0, args[3]
  local last, maxage = tonumber(args[4]) or 0, tonumber(args[5]) or 0
  local maxlen = tonumber(args[6]) or 0
  local meta = redis.call('HMGET', m, 'top', 'ep')
  local ep = meta[2]
  if not ep then
    return {}
  end
  local top = tonumber(meta[1]) or 0
  local from = 0 -- smallest id still within the age limit
  if maxage > 0 then
    from = now_us() - maxage
  end
  local xlen = redis.call('XLEN', h)
  local head, count = nil, 0
  if maxlen > 0 and xlen > maxlen then
    -- Past the count limit: the window starts skip entries in.
    local skip = xlen - maxlen
    local hd = redis.call('XRANGE', h, '-', '+', 'COUNT', skip + 1)
    head = hd[skip + 1]
    count = maxlen
    if idof(head[1]) < from then
      head = nil
    end
  end
  if head == nil and maxlen > 0 and xlen > 0 then
    local hd = redis.call('XRANGE', h, fmt(from) .. '-0', '+', 'COUNT', 1)
    head = hd[1]
    if head then
      count = xlen - #redis.call('XRANGE', h, '-', '(' .. head[1])
    end
  end
  if head == nil then
    -- Nothing stored: everything handed out was dropped.
    return {ep, fmt(top), fmt(top), 0, '0', '0'}
  end
  local first = idof(head[1])
  local _, _, trimmed = fields(head[2])
  local lastid = idof(redis.call('XREVRANGE', h, '+', '-', 'COUNT', 1)[1][1])
  local out = {ep, fmt(top), trimmed, count, fmt(first), fmt(lastid)}
  if kind == 'none' then
    return out
  end
  local entries
  if kind == 'all' or (kind == 'after' and after_ep ~= '' and after_ep ~= ep) then
    entries = redis.call('XRANGE', h, fmt(first) .. '-0', '+')
  elseif kind == 'after' then
    local start = after + 1
    if start < first then start = first end
    entries = redis.call('XRANGE', h, fmt(start) .. '-0', '+')
  elseif kind == 'last' then
    if last <= 0 then
      return out
    end
    local rev = redis.call('XREVRANGE', h, '+', fmt(first) .. '-0', 'COUNT', last)
    entries = {}
    for i = #rev, 1, -1 do
      entries[#entries + 1] = rev[i]
    end
  else
    return redis.error_reply('meteor_history: unknown kind ' .. tostring(kind))
  end
  for _, e in ipairs(entries) do
    local d, t = fields(e[2])
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
  redis.call('DEL', keys[1]) -- an empty stream: everything was dropped
  return 1
end

redis.register_function('meteor_publish_limits', publish_limits)
redis.register_function('meteor_publish', publish)
redis.register_function{function_name = 'meteor_history', callback = history, flags = {'no-writes'}}
redis.register_function('meteor_clear', clear)
