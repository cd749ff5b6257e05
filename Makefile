# warmbench — GNU make build. `make` builds the library and both programs;
# `make check` installs what is missing, then runs every suite (plain and
# ASan/UBSan builds) and prints one closing total.

PKGS      := libuv libpq libcurl jansson libmicrohttpd libcrypto libsystemd libical
VERSION   := 0.1.0
CC        ?= cc
PREFIX    ?= /usr/local
BUILD     ?= build

WARN      := -Wall -Wextra -Werror
CSTD      := -std=c11 -D_GNU_SOURCE
OPT       ?= -O2 -g
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
# libm: erfc for the A/B z-test (lib/report/abtest.c).
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) -lm
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS   = $(shell pkg-config --libs check)
SAN       ?=
ALL_CFLAGS = $(CSTD) $(WARN) $(OPT) $(SAN) -Iinclude -DWB_VERSION='"$(VERSION)"' \
             -DWB_SQL_DIR='"$(SQL_DIR_DEFAULT)"' -DWB_SHARE_DIR='"$(SHARE_DIR_DEFAULT)"' \
             $(PKG_CFLAGS) $(CFLAGS)
SQL_DIR_DEFAULT ?= $(CURDIR)/sql
# Read-only data (intent.json, ...): the source tree's config/, or the
# installed $(PREFIX)/share/warmbench (set by `make install`).
SHARE_DIR_DEFAULT ?= $(CURDIR)/config

LIB_SRC   := $(sort $(wildcard lib/*/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
HDRS      := $(wildcard include/warmbench/*.h)
UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Small C programs the integration tests drive against real servers.
DRV_SRC   := $(sort $(wildcard tests/drivers/drv_*.c))
DRV_BIN   := $(DRV_SRC:tests/drivers/%.c=$(BUILD)/tests/%)
PROGS     := $(BUILD)/warmbench $(BUILD)/warmbenchd

# Debian packages the build, the tests and the demo need.
DEB_PKGS  := build-essential pkg-config libuv1-dev libpq-dev libcurl4-openssl-dev \
             libjansson-dev libmicrohttpd-dev libssl-dev libsystemd-dev libical-dev check \
             postgresql postgresql-client python3 python3-aiosmtpd postfix \
             dovecot-imapd curl systemd man-db clang chromium fonts-dejavu-core faketime

.PHONY: all deps check check-asan unit demo demo-screenshot clean bench bench-import install
all: $(BUILD)/libwarmbench.a $(PROGS)

$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libwarmbench.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/warmbench: $(BUILD)/daemon/warmbench.o $(BUILD)/libwarmbench.a
	$(CC) $(SAN) -o $@ $^ $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/warmbenchd: $(BUILD)/daemon/warmbenchd.o $(BUILD)/libwarmbench.a
	$(CC) $(SAN) -o $@ $^ $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/tests/check_main.o: tests/unit/check_main.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(BUILD)/tests/test_%: tests/unit/test_%.c $(BUILD)/tests/check_main.o $(BUILD)/libwarmbench.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -o $@ $< $(BUILD)/tests/check_main.o \
	    $(BUILD)/libwarmbench.a $(PKG_LIBS) $(CHECK_LIBS) $(LDFLAGS)

$(BUILD)/tests/drv_%: tests/drivers/drv_%.c $(BUILD)/libwarmbench.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libwarmbench.a $(PKG_LIBS) $(LDFLAGS)

unit: $(UNIT_BIN) $(DRV_BIN)

# Installs only what is missing; no prompts; safe to rerun.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install:$$missing" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

check: deps
	@$(MAKE) --no-print-directory all unit fuzz-replay
	@$(MAKE) --no-print-directory BUILD=build/asan SAN="$(ASAN_FLAGS)" OPT="-O1 -g" all unit fuzz-replay
	@tests/run-all.sh build build/asan

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN="$(ASAN_FLAGS)" OPT="-O1 -g" all unit fuzz-replay
	@tests/run-all.sh build/asan

demo: deps all
	@tests/demo.sh $(BUILD)

# Runs the demo, then renders its report with headless Chromium to the PNG
# README shows (committed).
demo-screenshot: deps all
	@tests/demo.sh $(BUILD)
	@tests/demo/screenshot.sh demo/report.html docs/images/demo-report.png

clean:
	rm -rf build

# Times `warmbench import` of 1,000,000 generated rows against psql \copy of
# the same file on a throwaway cluster; not part of `make check`.
bench-import: $(BUILD)/warmbench
	@tests/bench/bench_import.sh $(BUILD)

# Sends 20,000 due messages through warmbenchd into Postfix's smtp-sink, beside
# a raw libcurl multi loop and `smtp-source -d` on the same sink (same size,
# same 8 connections); not part of `make check` or `make all`.
.PHONY: bench-send
bench-send: $(BUILD)/warmbench $(BUILD)/warmbenchd $(BUILD)/bench/raw_curl_send
	@tests/bench/bench_send.sh $(BUILD)

# 400 due messages through warmbenchd to an SMTP server that answers each
# final dot after 0.3 s, then 1.0 s (tests/integration/smtpd.py, 8
# connections), while /healthz and an open pixel are asked every 20 ms:
# msg/s against 0.9 x connections / delay, their p50/p99 against 20 ms,
# PASS or MISS each; not part of `make check`.
.PHONY: bench-remote
bench-remote: $(BUILD)/warmbench $(BUILD)/warmbenchd
	@tests/bench/bench_remote.sh $(BUILD)

# SOAK_S seconds (30 minutes by default) of mixed load on one warmbenchd:
# slow SMTP, opens and clicks, IMAP replies, an ATS failing a fifth of its
# webhooks, SIGHUP every minute, one PostgreSQL restart; RSS and descriptors
# sampled every 10 s. Fails on a growth trend over the second half, on
# anything lost or doubled (tests/soak/soak.py); not part of `make check`.
SOAK_S ?= 1800
.PHONY: soak
soak: deps $(BUILD)/warmbench $(BUILD)/warmbenchd
	@SOAK_S=$(SOAK_S) WB_BUILD=$(BUILD) /usr/bin/python3 tests/soak/soak.py

$(BUILD)/bench/raw_curl_send: tests/bench/raw_curl_send.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) $(shell pkg-config --cflags libcurl) -o $@ $< \
	    $(shell pkg-config --libs libcurl) $(LDFLAGS)

# `make install PREFIX=/usr/local DESTDIR=`: builds both programs again in
# build/inst$(PREFIX) with the installed data paths compiled in
# (WB_SQL_DIR=$(PREFIX)/share/warmbench/sql, WB_SHARE_DIR=$(PREFIX)/share/warmbench),
# then copies them, the systemd unit, sql/ (with sql/functions/), the example
# configuration and the man pages under $(DESTDIR)$(PREFIX). The daemon goes to sbin: only root or
# systemd starts it (section 8); the tool for sourcers goes to bin.
INST_BUILD   = build/inst$(PREFIX)
INST_SHARE   = $(PREFIX)/share/warmbench
UNITDIR     ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
MANDIR      ?= $(PREFIX)/share/man
INSTALL     ?= install
MAN_PAGES   := $(wildcard man/*.[158])
EXAMPLES    := $(filter-out config/intent.json config/secret.key,$(sort $(wildcard config/*.json config/*.csv)))

install:
	@case "$(PREFIX)" in /*) ;; *) echo "make install: PREFIX must be absolute, not '$(PREFIX)'" >&2; exit 64;; esac
	@$(MAKE) --no-print-directory BUILD=$(INST_BUILD) SQL_DIR_DEFAULT=$(INST_SHARE)/sql \
	    SHARE_DIR_DEFAULT=$(INST_SHARE) $(INST_BUILD)/warmbench $(INST_BUILD)/warmbenchd
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(INST_SHARE)/sql $(DESTDIR)$(INST_SHARE)/sql/functions \
	    $(DESTDIR)$(INST_SHARE)/examples/sequences \
	    $(DESTDIR)$(INST_SHARE)/examples/templates \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0755 $(INST_BUILD)/warmbench $(DESTDIR)$(PREFIX)/bin/warmbench
	$(INSTALL) -m 0755 $(INST_BUILD)/warmbenchd $(DESTDIR)$(PREFIX)/sbin/warmbenchd
	sed 's|/usr/local/|$(PREFIX)/|g' systemd/warmbenchd.service > $(DESTDIR)$(UNITDIR)/warmbenchd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/warmbenchd.service
	$(INSTALL) -m 0644 sql/*.sql $(DESTDIR)$(INST_SHARE)/sql/
	$(INSTALL) -m 0644 sql/functions/*.sql $(DESTDIR)$(INST_SHARE)/sql/functions/
	$(INSTALL) -m 0644 $(EXAMPLES) $(DESTDIR)$(INST_SHARE)/examples/
	$(INSTALL) -m 0644 config/sequences/* $(DESTDIR)$(INST_SHARE)/examples/sequences/
	$(INSTALL) -m 0644 config/templates/* $(DESTDIR)$(INST_SHARE)/examples/templates/
	if [ -f config/intent.json ]; then $(INSTALL) -m 0644 config/intent.json $(DESTDIR)$(INST_SHARE)/; fi
	if [ -f config/intent_model.bin ]; then $(INSTALL) -m 0644 config/intent_model.bin $(DESTDIR)$(INST_SHARE)/; fi
	for m in $(MAN_PAGES); do \
	  s=$${m##*.}; sed 's|/usr/local/|$(PREFIX)/|g' $$m > $(DESTDIR)$(MANDIR)/man$$s/$${m##*/} && \
	  chmod 0644 $(DESTDIR)$(MANDIR)/man$$s/$${m##*/} || exit 1; \
	done

# libFuzzer targets (tests/fuzz/fuzz_*.c), one per parser of outside input,
# built with clang (ASan + UBSan + libFuzzer) against the library compiled
# the same way in $(BUILD)/fuzzlib. `make fuzz FUZZ_S=60` runs each in turn
# for FUZZ_S seconds from its committed seeds (tests/fuzz/corpus/NAME; new
# inputs go to $(BUILD)/fuzz/corpus/NAME) and fails on any crash, leak,
# timeout or failed oracle; the reproducer is left in $(BUILD)/fuzz/.
# Not part of `make check`, which replays the seeds instead (fuzz-replay).
.PHONY: fuzz fuzz-replay
FUZZ_CC      ?= clang
FUZZ_S       ?= 60
FUZZ_FLAGS   ?= -timeout=10 -rss_limit_mb=2048 -max_len=65536
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
fuzz: $(FUZZ_BIN)
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(BUILD)/fuzz/corpus/$$t; \
	  if UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(BUILD)/fuzz/$$t \
	      -max_total_time=$(FUZZ_S) $(FUZZ_FLAGS) -print_final_stats=1 \
	      -artifact_prefix=$(BUILD)/fuzz/$$t- $(BUILD)/fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	      > $(BUILD)/fuzz/$$t.log 2>&1; then \
	    echo "$$t: ok, $$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' $(BUILD)/fuzz/$$t.log | tail -1)," \
	      "$$(awk '/stat::number_of_executed_units/ {r=$$2} /stat::average_exec_per_sec/ {s=$$2} END {print r " runs, " s " exec/s"}' $(BUILD)/fuzz/$$t.log)"; \
	  else \
	    echo "$$t: FAILED (log: $(BUILD)/fuzz/$$t.log)"; grep -E '^(==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)' $(BUILD)/fuzz/$$t.log; \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

$(BUILD)/fuzzlib/libwarmbench.a: $(LIB_SRC) $(HDRS)
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/fuzzlib CC=$(FUZZ_CC) OPT="-O1 -g" \
	    SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" $@

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(BUILD)/fuzzlib/libwarmbench.a $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(WARN) -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer -Iinclude \
	    -DWB_SHARE_DIR='"$(SHARE_DIR_DEFAULT)"' $(PKG_CFLAGS) -o $@ $< \
	    $(BUILD)/fuzzlib/libwarmbench.a $(PKG_LIBS)

# The same targets without libFuzzer (tests/fuzz/replay_main.c), built by
# this build's compiler and sanitizers against its library: `make check`
# runs every committed seed through them (tests/run-all.sh).
FUZZ_REPLAY  := $(FUZZ_TARGETS:%=$(BUILD)/tests/replay_%)
fuzz-replay: $(FUZZ_REPLAY)

$(BUILD)/tests/replay_fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(BUILD)/libwarmbench.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< tests/fuzz/replay_main.c $(BUILD)/libwarmbench.a \
	    $(PKG_LIBS) $(LDFLAGS)

# The tracking endpoint (drv_http) vs nginx serving the same GIF: wrk, 64
# connections on the pixels of 2,000 messages, 10 s each; prints the ratio
# and the non-2xx answers, and checks one stored open per (message, minute)
# hit. Not part of `make check`.
.PHONY: bench-track bench-deps
bench-track: bench-deps $(BUILD)/warmbench $(BUILD)/tests/drv_http
	@tests/bench/bench_track.sh $(BUILD)

# What bench-track needs beyond `make deps`, installed the same way.
bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="wrk nginx-light"

# Issue 18's HTTP abuse run at full size against warmbenchd on loopback
# (tests/bench/abuse.sh: slowloris, 10,000 keep-alive connections, hostile
# shapes, a million requests on one token, an unsubscribe probe throughout);
# prints latency, RSS and descriptor figures. Not part of `make check`,
# which runs test_abuse.py at a small size.
.PHONY: abuse
abuse: $(BUILD)/warmbench $(BUILD)/warmbenchd $(BUILD)/tests/drv_http
	@tests/bench/abuse.sh $(BUILD)

# `warmbench report --html` on 100,000 seeded candidates with their
# messages and events, against the 5 s target; not part of `make check`.
.PHONY: bench-report
bench-report: $(BUILD)/warmbench
	@tests/bench/bench_report.sh $(BUILD)

# Issue 12's scale figures on a throwaway cluster: import and enroll of
# 1,000,000 candidates (import beside the \copy floor), wb_claim's p50/p99
# at 10,000 and 1,000,000 (pgbench, rolled back), stats, pool and report
# with 5,000,000 events, and the event writer's rate. About 15 minutes;
# not part of `make check`.
.PHONY: bench-scale
bench-scale: $(BUILD)/warmbench
	@tests/bench/bench_scale.sh $(BUILD)

# Reply intent on the corpus's held-out split (tests/corpus/replies.json):
# accuracy overall and per language, unsubscribe recall, a confusion matrix
# per language, rules alone against the model, and microseconds per reply
# through the daemon's path. The training split is never scored.
.PHONY: bench-intent
bench-intent: $(BUILD)/tools/intent_eval
	@$(BUILD)/tools/intent_eval bench tests/corpus/replies.json config/intent.json

$(BUILD)/tools/intent_eval: tools/intent/intent_eval.c $(BUILD)/libwarmbench.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libwarmbench.a $(PKG_LIBS) $(LDFLAGS)

# Every benchmark in turn (not tests: each prints its figures).
bench: bench-import bench-send bench-track bench-report bench-scale
