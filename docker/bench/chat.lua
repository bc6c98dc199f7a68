-- wrk script: POST one chat completion. KEY sets the bearer key, MODEL the model, STREAM=1 asks
-- for a stream. Any non-2xx answer is counted by wrk and fails the benchmark.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KEY") or "sk-bench")
local stream = os.getenv("STREAM") and ',"stream":true' or ''
wrk.body = '{"model":"' .. (os.getenv("MODEL") or "gpt-4o-mini") .. '","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the benchmark in one short sentence, please."}],"max_tokens":64' .. stream .. '}'
