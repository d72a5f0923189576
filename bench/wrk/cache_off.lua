-- wrk script: a chat completion that opts out of the response cache ({"use-cache": false}) on a
-- server where it is on: the plain path, measured on the same server as the hits and misses.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"max_tokens":32,"cache":{"use-cache":false}}'
