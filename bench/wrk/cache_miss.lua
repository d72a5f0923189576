-- wrk script: POST a chat completion the response cache has never seen (a new question each time),
-- so every request is a cache miss: lookup, upstream call, store. Set STREAM to true for SSE.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
local STREAM = false
local salt = ""
local counter = 0

function init(args)
  -- 8 random bytes per thread and per run: no two runs (or threads) ask the same question.
  local f = io.open("/dev/urandom", "rb")
  local bytes = f:read(8)
  f:close()
  salt = bytes:gsub(".", function(c) return string.format("%02x", string.byte(c)) end)
end

function request()
  counter = counter + 1
  local body = '{"model":"bench-model","messages":[{"role":"user","content":"hello ' .. salt .. ' '
    .. counter .. '"}],"max_tokens":32' .. (STREAM and ',"stream":true' or '') .. '}'
  return wrk.format(nil, nil, nil, body)
end
