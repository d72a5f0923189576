-- wrk script: a streaming chat completion that opts out of the response cache (the plain path).
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"max_tokens":32,"stream":true,"cache":{"use-cache":false}}'
