-- wrk script for bench_track.sh: GETs the pixels (one per message, in
-- turn) until the last second of the run, then a path that records
-- nothing, so every pixel request is
-- answered before wrk stops; counts the 43-byte 200 answers (pixels) and
-- the 503s (queue full).
-- args: FILE_OF_PIXEL_PATHS IDLE_PATH DURATION_S
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    local h = { ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) bench_track" }
    pixel_reqs = {}
    for path in io.lines(args[1]) do
        table.insert(pixel_reqs, wrk.format("GET", path, h))
    end
    next_req = 0
    idle_req = wrk.format("GET", args[2], h)
    stop_at = os.time() + tonumber(args[3]) - 1
    pixels = 0
    busy = 0
end

function request()
    if os.time() >= stop_at then
        return idle_req
    end
    next_req = next_req % #pixel_reqs + 1
    return pixel_reqs[next_req]
end

function response(status, headers, body)
    if status == 200 and #body == 43 then
        pixels = pixels + 1
    elseif status == 503 then
        busy = busy + 1
    end
end

function done(summary, latency, requests)
    local n, b = 0, 0
    for _, t in ipairs(threads) do
        n = n + t:get("pixels")
        b = b + t:get("busy")
    end
    io.write(string.format("pixels %d\nbusy %d\n", n, b))
end
