# lockgate: one Makefile, objects under build/, warnings are errors.
#   make            build build/lockgate and build/lockgate-admin
#   make run        install what is missing, build, start the local demo
#   make test       the whole test suite (unit + integration), own Redis and upstream
#   make test-san   the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-valgrind  the integration suites with every lockgate under valgrind
#                   (memcheck, leaks); its reports in build/valgrind/test-logs/
#   make fuzz       libFuzzer targets for every parser of hostile input (FUZZ_SECONDS each)
#   make scan       third-party checks of a running lockgate: testssl, sslscan,
#                   promtool, doona (scripts/scan.sh)
#   make bench      side-by-side benchmark against nginx and haproxy (BENCHMARKS.md)

CC      ?= cc
BUILD   ?= build
PKGS     = libevent libevent_openssl libevent_pthreads libcurl jansson hiredis openssl inih zlib
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Iinclude $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lhttp_parser -lpthread -lm
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS   = $(shell pkg-config --libs check)

# V=1 shows the full compiler lines.
Q = $(if $(filter 1,$(V)),,@)

ifeq ($(FUZZ),1)
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(VALGRIND),1)
CFLAGS  += -O1 -fno-omit-frame-pointer
endif

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

CORE_SRC = $(filter-out src/main.c,$(wildcard src/*.c))
CORE_OBJ = $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
CLI_SRC  = $(wildcard src/cli/*.c)
CLI_OBJ  = $(CLI_SRC:src/cli/%.c=$(BUILD)/obj/cli/%.o)
UNIT_SRC = $(wildcard tests/unit/*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
ITEST_SRC = $(wildcard tests/integration/*.c)
ITEST_BIN = $(ITEST_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)
ITEST_HDRS = $(wildcard tests/integration/*.h) $(wildcard tests/*.h)
FUZZ_SRC = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
BENCH_SRC = $(wildcard tests/bench/*.c)
BENCH_BIN = $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)
HDRS     = $(wildcard include/lockgate/*.h) $(wildcard src/*.h) $(wildcard src/cli/*.h)

all: $(BUILD)/lockgate $(BUILD)/lockgate-admin

$(BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/lockgate: $(BUILD)/obj/main.o $(CORE_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/lockgate-admin: $(CLI_OBJ) $(CORE_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# One Check binary per unit test file (tests/unit/test_<module>.c).
$(BUILD)/tests/unit/%: tests/unit/%.c $(wildcard tests/*.h) $(CORE_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC/LD   $<")
	$(Q)$(CC) $(CFLAGS) $(CHECK_CFLAGS) -Itests -o $@ $< $(CORE_OBJ) $(LDFLAGS) $(LDLIBS) $(CHECK_LIBS)

# Integration tests and their helpers (test upstream), against the real binaries.
$(BUILD)/tests/integration/%: tests/integration/%.c $(ITEST_HDRS) $(CORE_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC/LD   $<")
	$(Q)$(CC) $(CFLAGS) $(CHECK_CFLAGS) -Itests -Itests/integration -o $@ $< $(CORE_OBJ) $(LDFLAGS) $(LDLIBS) $(CHECK_LIBS)

# The gateway with the hooks of test builds (worker.c, LG_TEST_HOOKS: a worker
# that dies on demand), for the integration tests only; build/lockgate has none.
HOOKS_OBJ = $(filter-out $(BUILD)/obj/worker.o,$(CORE_OBJ)) $(BUILD)/obj/hooks/worker.o
$(BUILD)/obj/hooks/worker.o: src/worker.c $(HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (test hooks)")
	$(Q)$(CC) $(CFLAGS) -DLG_TEST_HOOKS -c -o $@ $<

$(BUILD)/tests/lockgate-hooks: $(BUILD)/obj/main.o $(HOOKS_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tests: $(UNIT_BIN) $(ITEST_BIN) $(BUILD)/tests/lockgate-hooks

# libFuzzer targets (clang): make fuzz [FUZZ_SECONDS=N]
$(BUILD)/fuzz/%: tests/fuzz/%.c $(CORE_OBJ) $(HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $<")
	$(Q)$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(CORE_OBJ) $(LDFLAGS) $(LDLIBS)

fuzzers: $(FUZZ_BIN)

# The benchmark's own clients (tests/bench/*.c): standalone, libcurl + jansson.
$(BUILD)/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC/LD   $<")
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) $(LDLIBS)

bench-tools: $(BENCH_BIN)

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

test: deps
	@$(MAKE) --no-print-directory all tests
	@scripts/test.sh $(BUILD)

test-san: deps
	@$(MAKE) --no-print-directory BUILD=build/san SAN=1 all tests
	@scripts/test.sh build/san

# Valgrind runs lockgate 20-50 times slower: the harness's waits and Check's
# timeouts are scaled by VALGRIND_SLOW. Definite and indirect leaks are
# errors; valgrind.supp lists what is not ours to fix.
VALGRIND_SLOW ?= 10
VALGRIND_LOGS  = $(CURDIR)/build/valgrind/test-logs
VALGRIND_CMD   = valgrind --error-exitcode=99 --leak-check=full \
                 --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
                 --num-callers=30 --suppressions=$(CURDIR)/tests/valgrind.supp \
                 --log-file=$(VALGRIND_LOGS)/lockgate-%p.valgrind
test-valgrind: deps
	@$(MAKE) --no-print-directory BUILD=build/valgrind VALGRIND=1 all tests
	@ITEST_LG_WRAPPER="$(VALGRIND_CMD)" ITEST_SLOW_FACTOR=$(VALGRIND_SLOW) \
	    scripts/test.sh build/valgrind integration

FUZZ_SECONDS ?= 10
fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang FUZZ=1 fuzzers
	@scripts/fuzz.sh build/fuzz $(FUZZ_SECONDS)

scan: deps
	@$(MAKE) --no-print-directory all $(BUILD)/tests/integration/upstream_server
	@LG_BUILD=$(BUILD) scripts/scan.sh

bench: deps
	@$(MAKE) --no-print-directory all bench-tools
	@scripts/bench.sh

clean:
	rm -rf build

.PHONY: all deps run test test-san test-valgrind fuzz fuzzers scan bench bench-tools clean tests
