-- wrk script: POST a streaming OpenAI chat completion asking for the usage chunk (include_usage).
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"max_tokens":32,"stream":true,"stream_options":{"include_usage":true}}'
