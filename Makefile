# Builds the ACME core and its unit tests (the server modules are built by
# build.sh through nginx's configure and apxs); `make fuzz` the libFuzzer
# targets of fuzz/ and `make asan-unit` the unit tests under
# AddressSanitizer + UndefinedBehaviorSanitizer, both with clang, from one
# sanitizer build of common/ (build/san/).
#
# common/core/ is the pure core, common/io/ the blocking I/O (docs/design.md
# "Layout"): core objects are compiled with common/core/ alone on the
# include path, and build/layout.ok (t/check_layout.sh) checks the rule
# before anything is built.
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter
LDLIBS  += -lssl -lcrypto -ljansson -lpthread

CORE_INC   := -Icommon/core
COMMON_INC := -Icommon/core -Icommon/io
COMMON_SRC := $(wildcard common/core/*.c common/io/*.c)
COMMON_HDR := $(wildcard common/core/*.h common/io/*.h)
UNIT_SRC   := $(wildcard t/unit/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=build/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.c=build/%.o)

all: build/layout.ok build/unit_tests build/kv_probe build/fleet_probe

build/layout.ok: t/check_layout.sh $(wildcard common/* common/core/* common/io/*)
	@mkdir -p $(dir $@)
	t/check_layout.sh common
	@touch $@

check-layout: build/layout.ok

build/common/core/%.o: common/core/%.c $(wildcard common/core/*.h) | build/layout.ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CORE_INC) -c $< -o $@

build/%.o: %.c $(COMMON_HDR) $(wildcard t/unit/*.h) | build/layout.ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(COMMON_INC) -c $< -o $@

build/libacmecore.a: $(COMMON_OBJ)
	rm -f $@
	ar rcs $@ $^

build/unit_tests: $(UNIT_OBJ) build/libacmecore.a
	$(CC) $(CFLAGS) -o $@ $(UNIT_OBJ) build/libacmecore.a $(LDLIBS)

# the shared store's client driven from the command line
# (t/integration/test_etcd_store.py runs it against a real etcd)
build/kv_probe: t/tools/kv_probe.c build/libacmecore.a $(COMMON_HDR)
	$(CC) $(CFLAGS) $(COMMON_INC) -o $@ $< build/libacmecore.a $(LDLIBS)

# two fleet nodes in one process (acme_fleet_node.h) against a real etcd
build/fleet_probe: t/tools/fleet_probe.c build/libacmecore.a $(COMMON_HDR)
	$(CC) $(CFLAGS) $(COMMON_INC) -o $@ $< build/libacmecore.a $(LDLIBS) -lpthread

unit: build/unit_tests
	build/unit_tests

# ---- sanitizers and fuzzing (clang: Debian's clang + libclang-rt-14-dev) ----
CLANG       ?= clang
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
# (no -Werror: the gcc build above enforces the warnings; clang's own
# extra ones must not stop the sanitizer runs)
SAN_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra \
               -Wno-unused-parameter $(SAN)
# common/ also carries libFuzzer's coverage instrumentation; the unit tests
# link the same objects (the sanitizer runtime has no-op coverage hooks)
SAN_COMMON  := $(COMMON_SRC:%.c=build/san/%.o)
SAN_UNIT    := $(UNIT_SRC:%.c=build/san/%.o)
FUZZ_SRC    := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN    := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)

build/san/common/core/%.o: common/core/%.c $(wildcard common/core/*.h) | build/layout.ok
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN_CFLAGS) $(CORE_INC) -fsanitize=fuzzer-no-link -c $< -o $@

build/san/common/io/%.o: common/io/%.c $(COMMON_HDR) | build/layout.ok
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN_CFLAGS) $(COMMON_INC) -fsanitize=fuzzer-no-link -c $< -o $@

build/san/t/unit/%.o: t/unit/%.c $(COMMON_HDR) $(wildcard t/unit/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN_CFLAGS) $(COMMON_INC) -c $< -o $@

build/san/libacmecore.a: $(SAN_COMMON)
	rm -f $@
	ar rcs $@ $^

build/san/unit_tests: $(SAN_UNIT) build/san/libacmecore.a
	$(CLANG) $(SAN_CFLAGS) -o $@ $(SAN_UNIT) build/san/libacmecore.a $(LDLIBS)

build/fuzz/%: fuzz/%.c fuzz/fuzz.h build/san/libacmecore.a
	@mkdir -p $(dir $@)
	$(CLANG) $(SAN_CFLAGS) $(COMMON_INC) -fsanitize=fuzzer -o $@ $< build/san/libacmecore.a $(LDLIBS)

# the engine's seeds, recorded from the unit tests' scripted CA
build/fuzz/gen_engine_seeds: fuzz/gen_engine_seeds.c fuzz/fuzz.h t/unit/fake_ca.c \
        build/libacmecore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(COMMON_INC) -It/unit -o $@ fuzz/gen_engine_seeds.c t/unit/fake_ca.c \
	    build/libacmecore.a $(LDLIBS)

fuzz: $(FUZZ_BIN)

# what t/test_fuzz.py runs
san: build/san/unit_tests $(FUZZ_BIN)

asan-unit: build/san/unit_tests
	build/san/unit_tests

fuzz-seeds: build/fuzz/gen_engine_seeds
	build/fuzz/gen_engine_seeds fuzz/corpus/fuzz_engine
	/usr/bin/python3 fuzz/make_dns_seeds.py fuzz/corpus/fuzz_dns

clean:
	rm -rf build

.PHONY: all unit clean fuzz san asan-unit fuzz-seeds check-layout
