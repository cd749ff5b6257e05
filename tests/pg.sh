# Shell helpers shared by the demo and the benchmarks: a throwaway PostgreSQL
# cluster in a folder, on a free port, run as the postgres user when we are
# root (PostgreSQL refuses root). Source this file, then:
#   wb_pg_start DIR    sets WB_PG_PORT and WB_PG_URL (database "postgres")
#   wb_pg_stop DIR     stops it (the folder is left for the caller)
WB_PGBIN=${WB_PGBIN:-/usr/lib/postgresql/15/bin}

wb_as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

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
