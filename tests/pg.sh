# Shell helpers shared by the demo and the benchmarks: a throwaway PostgreSQL
# cluster in a folder, on a free port, run as the postgres user when we are
# root (PostgreSQL refuses root). Source this file, then:
#   wb_pg_start DIR    sets WB_PG_PORT and WB_PG_URL (database "postgres")
#   wb_pg_stop DIR     stops it (the folder is left for the caller)
WB_PGBIN=${WB_PGBIN:-/usr/lib/postgresql/15/bin}

# From /: postgres may not enter the caller's folder (a clone in /root).
wb_as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

wb_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wb_pg_start() {
    local dir=$1
    mkdir -p "$dir"
    chmod 700 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    wb_as_pg "$WB_PGBIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 \
        --locale=C >/dev/null
    WB_PG_PORT=$(wb_free_port)
    wb_as_pg "$WB_PGBIN/pg_ctl" -D "$dir/data" -w -l "$dir/log" start -o \
        "-p $WB_PG_PORT -k $dir -c listen_addresses=127.0.0.1 ${WB_PG_OPTS:-}" >/dev/null
    WB_PG_URL="postgresql://postgres@127.0.0.1:$WB_PG_PORT/postgres"
}

wb_pg_stop() {
    local dir=$1
    # Not running (a previous run stopped it) is fine; `if` keeps set -e out of it.
    if [ -d "$dir/data" ]; then
        wb_as_pg "$WB_PGBIN/pg_ctl" -D "$dir/data" stop -m fast >/dev/null 2>&1 || true
    fi
}

# wb_bench_config DIR DB_URL PORT: a configuration in DIR/cfg that the CLI
# accepts (a secret, empty sequence and template folders, one sender, HTTP
# on PORT), for benchmarks that only run `warmbench`; sets WB_BENCH_CFG to
# its warmbench.json.
wb_bench_config() {
    local cfg=$1/cfg
    mkdir -p "$cfg/sequences" "$cfg/templates"
    echo "bench-secret-0123456789abcdef-0123456789" > "$cfg/secret.key"
    chmod 600 "$cfg/secret.key"
    cat > "$cfg/warmbench.json" <<JSON
{ "database": "$2",
  "http": { "listen": "127.0.0.1:$3", "public_url": "http://127.0.0.1:8025" },
  "secret_file": "secret.key",
  "smtp": { "url": "smtp://127.0.0.1:2525", "tls": "off" },
  "bounce_domain": "bounces.example.com",
  "senders": { "ana": { "from": "Ana <ana@example.com>", "reply_to": "ana@example.com",
                        "daily_limit": 0, "min_interval_s": 0 } },
  "sequences_dir": "sequences", "templates_dir": "templates" }
JSON
    WB_BENCH_CFG=$cfg/warmbench.json
}
