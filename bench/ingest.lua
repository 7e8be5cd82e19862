-- wrk script for the webhook ingest path (run by bench/run.py, which sets the variables below).
--
-- Every request is a new delivery, signed like a monitoring tool would sign it:
--   X-Timestamp: <unix seconds>
--   X-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
-- The body carries a sequence number, so no two signatures repeat (the server refuses a
-- replayed one). HMAC comes from the OpenSSL that wrk itself links, through LuaJIT's FFI,
-- so requests are built as they are sent: no pre-generated file, no limit on their count.
--
-- Environment:
--   BENCH_KEYS    file of "<api key>\t<hmac secret>" lines, one company each
--   BENCH_MODE    "generic" (one alert a request) or "alertmanager" (BENCH_ALERTS a request)
--   BENCH_TAG     a short word that makes this phase's bodies differ from other phases'
--   BENCH_RATE    requests/s over all threads, paced open-loop; 0 = as fast as possible
--   BENCH_THREADS the -t given to wrk (the pace is split between threads)
--   BENCH_ALERTS  alerts per Alertmanager body (default 100)
--   BENCH_GROUPS  distinct alertname x instance keys per Alertmanager body (default 20)
--   BENCH_ASSETS  asset names per company, bench-host-00 .. (default 20)
--   BENCH_OUT     where done() writes its JSON summary
--   BENCH_COMPANIES  load only the first N companies of BENCH_KEYS (default: all)
--
-- "storm" mode: Alertmanager bodies of BENCH_ALERTS alerts, all for one company (set
-- BENCH_COMPANIES=1), as a large Kubernetes client in trouble sends them: 10 alert names
-- over STORM_NODES nodes (20,000 distinct keys), and 30 % of the alerts on pods never
-- seen before (a fresh name each, labelled with one of 50 deployments).

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *md, const void *key, int key_len, const unsigned char *data,
                    size_t data_len, unsigned char *out, unsigned int *out_len);
]])

local CLOCK_MONOTONIC = 1
-- Each company gets 20 distinct problems (aggregation keys) per phase, so correlation opens
-- 20 incidents per company and then grows them, as a burst of alerts does.
local SIGNATURES = { "HighCPU", "DiskFull", "MemoryPressure", "ServiceDown", "HighLatency" }
local ALERTNAMES = { "NodeDown", "TargetDown", "PodCrashLooping", "FilesystemFull", "SlowRequests" }
local SEVERITIES = { "critical", "warning", "warning", "info", "critical" }

local mode = os.getenv("BENCH_MODE") or "generic"
local tag = os.getenv("BENCH_TAG") or "x"
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "1")
local alerts_per_body = tonumber(os.getenv("BENCH_ALERTS") or "100")
local groups_per_body = tonumber(os.getenv("BENCH_GROUPS") or "20")
local asset_count = tonumber(os.getenv("BENCH_ASSETS") or "20")
local company_limit = tonumber(os.getenv("BENCH_COMPANIES") or "0")
local path = "/api/webhooks/alerts/" .. (mode == "storm" and "alertmanager" or mode)
local STORM_NAMES = {
  "KubePodCrashLooping", "KubePodNotReady", "KubeContainerWaiting", "TargetDown",
  "NodeFilesystemSpaceFillingUp", "KubeMemoryOvercommit", "CPUThrottlingHigh",
  "KubeDeploymentReplicasMismatch", "NodeNetworkReceiveErrs", "KubeJobFailed",
}
local STORM_SEVERITIES = { "critical", "warning", "warning", "critical", "warning" }
local STORM_NODES = 2000

local timespec = ffi.new("bench_timespec")
local digest = ffi.new("unsigned char[32]")
local digest_len = ffi.new("unsigned int[1]")
local sha256 = ffi.C.EVP_sha256()

local function clock()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local function hmac_hex(secret, message)
  ffi.C.HMAC(sha256, secret, #secret, message, #message, digest, digest_len)
  local hex = {}
  for i = 0, 31 do
    hex[i + 1] = string.format("%02x", digest[i])
  end
  return table.concat(hex)
end

local function asset(index)
  return string.format("bench-host-%02d", index % asset_count)
end

-- Per-thread state (each wrk thread runs its own copy of this script). counts, late and
-- sample are globals because done() reads them through thread:get().
local keys = {}
local seq = 0
local next_at = 0
local interval = 0
counts = {}
late = 0
sample = ""

-- ---------------------------------------------------------------- bodies
local function generic_body(n, company_count, now_iso)
  local k = math.floor(n / company_count) % asset_count
  local i = k % #SIGNATURES + 1
  return string.format(
    '{"asset_name":"%s","signature":"%s","severity":"%s","message":"%s at threshold (%s-%s)",'
      .. '"tool_source":"bench-nagios","timestamp":"%s"}',
    asset(k),
    SIGNATURES[i],
    i == 4 and "critical" or "high",
    SIGNATURES[i],
    tag,
    n,
    now_iso
  )
end

local function alertmanager_body(n, now_iso)
  local parts = {}
  for j = 0, alerts_per_body - 1 do
    local group = j % groups_per_body
    local s = group % #ALERTNAMES + 1
    local instance = asset(math.floor(group / #ALERTNAMES))
    parts[#parts + 1] = string.format(
      '{"status":"firing","labels":{"alertname":"%s","instance":"%s","job":"node",'
        .. '"severity":"%s","queue":"q%d"},"annotations":{"summary":"%s on %s",'
        .. '"description":"%s has fired on %s for queue q%d"},"startsAt":"%s",'
        .. '"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph",'
        .. '"fingerprint":"%s%x%02x"}',
      ALERTNAMES[s],
      instance,
      SEVERITIES[s],
      j,
      ALERTNAMES[s],
      instance,
      ALERTNAMES[s],
      instance,
      j,
      now_iso,
      tag,
      n,
      j
    )
  end
  return '{"version":"4","groupKey":"{}:{}","truncatedAlerts":0,"status":"firing",'
    .. '"receiver":"alertwhisperer","groupLabels":{},"commonLabels":{"job":"node"},'
    .. '"commonAnnotations":{},"externalURL":"http://alertmanager:9093","alerts":['
    .. table.concat(parts, ",")
    .. "]}"
end

-- One alert of the storm: j-th of request n. 30 % are on a pod seen for the first time.
local function storm_alert(n, j, now_iso)
  local h = (n * 7919 + j * 104729) % 1000003
  local name = STORM_NAMES[math.floor(h / 7) % #STORM_NAMES + 1]
  local instance, extra
  if h % 10 < 3 then
    instance = string.format("pod-%s-%x-%02x", tag, n, j)
    extra = string.format(',"namespace":"shop","deployment":"deploy-%02d"', h % 50)
  else
    instance = string.format("storm-node-%04d", math.floor(h / 10) % STORM_NODES)
    extra = ""
  end
  return string.format(
    '{"status":"firing","labels":{"alertname":"%s","instance":"%s","severity":"%s"%s},'
      .. '"annotations":{"summary":"%s on %s"},"startsAt":"%s",'
      .. '"endsAt":"0001-01-01T00:00:00Z","fingerprint":"%s%x%02x"}',
    name,
    instance,
    STORM_SEVERITIES[math.floor(h / 3) % #STORM_SEVERITIES + 1],
    extra,
    name,
    instance,
    now_iso,
    tag,
    n,
    j
  )
end

local function storm_body(n, now_iso)
  local parts = {}
  for j = 0, alerts_per_body - 1 do
    parts[#parts + 1] = storm_alert(n, j, now_iso)
  end
  return '{"version":"4","groupKey":"{}:{}","truncatedAlerts":0,"status":"firing",'
    .. '"receiver":"alertwhisperer","groupLabels":{},"commonLabels":{},'
    .. '"commonAnnotations":{},"externalURL":"http://alertmanager:9093","alerts":['
    .. table.concat(parts, ",")
    .. "]}"
end

-- ---------------------------------------------------------------- wrk hooks
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_KEYS")) do
    local key, secret = line:match("^(%S+)\t(%S+)$")
    if company_limit == 0 or #keys < company_limit then
      keys[#keys + 1] = { key = key, secret = secret }
    end
  end
  if rate > 0 then
    interval = thread_count / rate
    next_at = clock() + id * interval / thread_count
  end
end

function request()
  seq = seq + 1
  -- n is unique over threads; it picks the company round-robin and the alert content.
  local n = seq * thread_count + id
  local company = keys[n % #keys + 1]
  local now_iso = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local body
  if mode == "storm" then
    body = storm_body(n, now_iso)
  elseif mode == "alertmanager" then
    body = alertmanager_body(n, now_iso)
  else
    body = generic_body(n, #keys, now_iso)
  end
  local timestamp = tostring(os.time())
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-API-Key"] = company.key,
    ["X-Timestamp"] = timestamp,
    ["X-Signature"] = "sha256=" .. hmac_hex(company.secret, timestamp .. "." .. body),
  }, body)
end

if rate > 0 then
  -- Open-loop pacing: each request takes the next slot of this thread's schedule; a slot
  -- already past (every connection was busy) is sent at once and counted as late.
  function delay()
    local now = clock()
    local at = next_at
    next_at = next_at + interval
    if at < now - 0.001 then
      late = late + 1
    end
    return math.max(0, (at - now) * 1000)
  end
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status ~= 202 and sample == "" then
    sample = status .. " " .. body:sub(1, 300)
  end
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

function done(summary, latency, requests)
  local statuses, late_total, first_error = {}, 0, ""
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("counts")) do
      statuses[code] = (statuses[code] or 0) + n
    end
    late_total = late_total + thread:get("late")
    if first_error == "" then
      first_error = thread:get("sample")
    end
  end
  local status_items = {}
  for code, n in pairs(statuses) do
    status_items[#status_items + 1] = string.format('"%d":%d', code, n)
  end
  local e = summary.errors
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  out:write(
    string.format(
      '{"duration_s":%.3f,"requests":%d,"bytes":%d,"statuses":{%s},'
        .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
        .. '"latency_ms":{"mean":%.3f,"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f},'
        .. '"late":%d,"sample_error":%s}\n',
      summary.duration / 1e6,
      summary.requests,
      summary.bytes,
      table.concat(status_items, ","),
      e.connect,
      e.read,
      e.write,
      e.timeout,
      latency.mean / 1e3,
      latency:percentile(50) / 1e3,
      latency:percentile(90) / 1e3,
      latency:percentile(99) / 1e3,
      latency.max / 1e3,
      late_total,
      json_string(first_error)
    )
  )
  out:close()
end
