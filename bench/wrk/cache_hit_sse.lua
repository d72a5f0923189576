-- wrk script: the same streaming chat completion again and again: replayed from the response cache.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"hello cache"}],"max_tokens":32,"stream":true}'
