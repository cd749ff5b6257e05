-- wrk script for bench_track.sh: GETs the pixels of FILE_OF_PIXEL_PATHS
-- (one per message) in turn, over and over, and counts the answers: the
-- 43-byte 200s (pixels), the non-2xx ones, and any other 2xx.
-- args: FILE_OF_PIXEL_PATHS
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
    pixels = 0
    non2xx = 0
    odd = 0
end

function request()
    next_req = next_req % #pixel_reqs + 1
    return pixel_reqs[next_req]
end

function response(status, headers, body)
    if status == 200 and #body == 43 then
        pixels = pixels + 1
    elseif status < 200 or status > 299 then
        non2xx = non2xx + 1
    else
        odd = odd + 1
    end
end

function done(summary, latency, requests)
    local p, n, o = 0, 0, 0
    for _, t in ipairs(threads) do
        p = p + t:get("pixels")
        n = n + t:get("non2xx")
        o = o + t:get("odd")
    end
    io.write(string.format("pixels %d\nnon2xx %d\nodd %d\n", p, n, o))
end
