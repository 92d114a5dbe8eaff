-- wrk script: POST the same batch (body file in BATCH_FILE) with the server key.
local file = io.open(os.getenv("BATCH_FILE"), "rb")
wrk.body = file:read("*a")
file:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SERVER_KEY")
