-- wrk script: POST the same chat completion again and again: after the first, every request is
-- answered from the response cache.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"hello cache"}],"max_tokens":32}'
