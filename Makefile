# Builds the ACME core and its unit tests (the server modules are built by
# build.sh through nginx's configure and apxs).
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Icommon
LDLIBS  += -lssl -lcrypto -ljansson -lpthread

COMMON_SRC := $(wildcard common/*.c)
UNIT_SRC   := $(wildcard t/unit/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=build/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.c=build/%.o)

all: build/unit_tests

build/%.o: %.c $(wildcard common/*.h t/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

build/libacmecore.a: $(COMMON_OBJ)
	rm -f $@
	ar rcs $@ $^

build/unit_tests: $(UNIT_OBJ) build/libacmecore.a
	$(CC) $(CFLAGS) -o $@ $(UNIT_OBJ) build/libacmecore.a $(LDLIBS)

unit: build/unit_tests
	build/unit_tests

clean:
	rm -rf build

.PHONY: all unit clean
