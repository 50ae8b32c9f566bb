-- wrk_json.lua -- serverbench's wrk 4.x script: write one JSON document with the run's
-- counters, latency statistics and latency histogram. Verified with Debian's wrk 4.1.0
-- (LuaJIT 2.1). Read by serverbench.wrk.parse().
--
-- Env (done() runs in wrk's main Lua state and cannot see script arguments):
--   SERVERBENCH_WRK_JSON=<file>          where to write the document (required)
--   SERVERBENCH_WRK_EXACT_BUDGET=<n>     bucket visits allowed for the exact histogram
--                                        dump (default 2e8, about 0.2 s)
-- Units: microseconds for latency and duration, requests per second for thread_rps.
--
-- wrk keeps latency in one counter per microsecond, and every stats access scans
-- min..max of that array: `percentile`, `mean`, `stdev` and `#s` once each, and
-- `s(i)` (the i-th distinct value) rescans from min on every call. So the exact dump
-- costs about #s * (max - min) / 2 visits; above the budget we export a dense rank
-- grid of percentiles instead, which costs one partial scan per point.
--
-- No request() or response() on purpose: defining either makes wrk call Lua for every
-- request or response, which costs throughput.
--
-- wrk has already applied its coordinated-omission correction (stats_correct) to the
-- latency histogram before done() runs; there is no way to see the raw one.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- ------------------------------------------------------------------ JSON
local NULL = setmetatable({}, { __tostring = function() return "null" end })

local function enc_num(v)
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if v == math.floor(v) then return string.format("%.0f", v) end
  return string.format("%.10g", v)
end

local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function enc_str(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    return ESC[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode(v)
  local t = type(v)
  if v == nil or v == NULL then return "null"
  elseif t == "boolean" then return tostring(v)
  elseif t == "number" then return enc_num(v)
  elseif t == "string" then return enc_str(v)
  elseif t == "table" then
    if v[1] ~= nil then
      local out = {}
      for i = 1, #v do out[i] = encode(v[i]) end
      return "[" .. table.concat(out, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local out = {}
    for _, k in ipairs(keys) do out[#out + 1] = enc_str(k) .. ":" .. encode(v[k]) end
    return "{" .. table.concat(out, ",") .. "}"
  end
  return "null"
end

-- ------------------------------------------------------------------ stats
local PCTS = { 50, 75, 90, 99, 99.9, 99.99 }
local GRID_POINTS_PER_DECADE = 80   -- quantiles 1 - 10^(-k/80), k = 0..400: 0 .. 99.999 %

local function spread(s, distinct)
  if distinct == 0 then             -- with no samples wrk reports min = 2^64 - 1
    return { min = NULL, max = NULL, mean = NULL, stdev = NULL }
  end
  return { min = s.min, max = s.max, mean = s.mean, stdev = s.stdev }
end

local function within_stdev_pct(s, distinct)
  local lo, hi = s.mean - s.stdev, s.mean + s.stdev
  local within, total = 0, 0
  for i = 1, distinct do
    local value, count = s(i)
    total = total + count
    if value >= lo and value <= hi then within = within + count end
  end
  return 100 * within / total
end

-- Total samples without a full dump. percentile(p) returns the sample of rank
-- round(p/100 * count + 0.5), which leaves the lowest value exactly when
-- p/100 * count >= n1 (n1 = samples at the lowest value): bisect p for that edge.
-- Each probe stops at the second-lowest value, so this is cheap.
local function sample_count(s)
  local v1, n1 = s(1)
  local lo, hi = 0, 100
  for _ = 1, 400 do
    local mid = (lo + hi) / 2
    if mid <= lo or mid >= hi then break end
    if s:percentile(mid) == v1 then lo = mid else hi = mid end
  end
  return math.floor(100 * n1 / hi + 0.5)
end

-- {rank, value} pairs: the sample of that rank (1-based, ascending) has that value.
local function rank_grid(s, count)
  local grid, last = {}, 0
  local steps = GRID_POINTS_PER_DECADE * 5
  for k = 0, steps do
    local q = 1 - 10 ^ (-k / GRID_POINTS_PER_DECADE)
    local rank = math.min(count - 1, math.max(1, math.ceil(q * count)))
    if rank > last then
      last = rank
      -- p chosen so that wrk's round(p/100 * count + 0.5) is exactly this rank
      grid[#grid + 1] = { rank, s:percentile(100 * (rank - 0.5) / count) }
    end
  end
  grid[#grid + 1] = { count, s.max }
  return grid
end

function done(summary, latency, requests)
  local started = os.clock()
  local budget = tonumber(os.getenv("SERVERBENCH_WRK_EXACT_BUDGET") or "") or 2e8
  local e = summary.errors
  local res = {
    tool = "wrk",
    format = 1,
    threads = #threads,
    target = { scheme = wrk.scheme, host = wrk.host, port = wrk.port or NULL, path = wrk.path },
    duration_us = summary.duration,
    requests = summary.requests,        -- completed responses, any status
    bytes = summary.bytes,              -- bytes read, headers included
    errors = { connect = e.connect, read = e.read, write = e.write,
               status = e.status,       -- responses with status > 399
               timeout = e.timeout },   -- responses that arrived after --timeout
    exact_budget = budget,
  }

  local lat_distinct = #latency
  local lat = spread(latency, lat_distinct)   -- excludes responses slower than --timeout
  lat.percentiles = {}
  res.latency_samples = 0
  if lat_distinct > 0 then
    for _, q in ipairs(PCTS) do lat.percentiles[string.format("%g", q)] = latency:percentile(q) end
    local cost = lat_distinct * (latency.max - latency.min) / 2
    res.latency_scan_cost = cost
    if cost <= budget then
      local hist, samples = {}, 0
      for i = 1, lat_distinct do
        local value, count = latency(i)
        hist[i] = { value, count }
        samples = samples + count
      end
      res.latency_histogram_us = hist
      res.latency_samples = samples     -- exceeds requests when CO correction added samples
    else
      local samples = sample_count(latency)
      res.latency_grid_us = rank_grid(latency, samples)
      res.latency_samples = samples
    end
  end
  res.latency_us = lat

  local rps_distinct = #requests        -- per-thread rate sampled every 100 ms
  local rps = spread(requests, rps_distinct)
  rps.within_stdev_pct = NULL
  if rps_distinct > 0 and rps_distinct * (requests.max - requests.min) / 2 <= budget then
    rps.within_stdev_pct = within_stdev_pct(requests, rps_distinct)
  end
  res.thread_rps = rps

  res.done_cpu_s = os.clock() - started
  local path = os.getenv("SERVERBENCH_WRK_JSON")
  if not path or path == "" then
    io.stderr:write("wrk_json.lua: SERVERBENCH_WRK_JSON is not set; no JSON written\n")
    return
  end
  local f = assert(io.open(path, "w"))
  f:write(encode(res), "\n")
  f:close()
end
