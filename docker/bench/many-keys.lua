-- wrk script: POST chat completions, each with the next of KEYS seeded keys
-- (sk-tenant000…0 onwards, see tenants.py), so most requests present a key the gateway has not
-- seen yet. MODEL sets the model.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. (os.getenv("MODEL") or "gpt-4o-mini") .. '","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
local keys = tonumber(os.getenv("KEYS") or "300000")
local counter = 0

request = function()
    counter = counter + 1
    local key = string.format("sk-tenant%045d", counter % keys)
    return wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. key }, nil)
end
