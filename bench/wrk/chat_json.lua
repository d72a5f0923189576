-- wrk script: POST a non-streaming OpenAI chat completion (keep-alive).
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"max_tokens":32}'
