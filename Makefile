# correo — see README.md. GNU make.
#   make            build build/correo
#   make check      install deps, build, run unit + integration tests, then
#                   the same under ASan+UBSan, then replay the fuzz corpora
#   make run        build and start the embedded default on loopback
#   make fuzz       build the libFuzzer harnesses and run each FUZZ_TIME seconds
#   make install    install the binary and the man pages under PREFIX

CC       ?= cc
PREFIX   ?= /usr/local
FUZZ_TIME ?= 60
PYTEST   ?= /usr/bin/python3 -m pytest
PYTEST_ARGS ?= -q -x -p no:cacheprovider

PKGS     := libevent_core libevent_openssl libevent_pthreads libssl libcrypto \
            sqlite3 libcrypt inih libgsasl gmime-3.0 libunbound
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wno-format-nonliteral -Werror
CFLAGS   ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Isrc $(PKG_CFLAGS) -MMD -MP
LDLIBS   := $(PKG_LIBS) -lpthread

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined

SRCS     := $(sort $(wildcard src/*/*.c))
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))

# $(call objs,VARIANT,SOURCES)
objs = $(patsubst %.c,build/$(1)/obj/%.o,$(2))

.PHONY: all check unit integration asan-check fuzz fuzz-build fuzz-replay \
        run install clean deps bench
.DELETE_ON_ERROR:
.SECONDARY:

all: build/correo

deps:
	@./scripts/deps.sh

# ---- normal build ------------------------------------------------------
build/plain/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

build/correo: $(call objs,plain,src/main.c $(LIB_SRCS))
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

build/plain/unit/%: build/plain/obj/tests/unit/%.o $(call objs,plain,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

# ---- ASan + UBSan build -----------------------------------------------
build/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c $< -o $@

build/asan/correo: $(call objs,asan,src/main.c $(LIB_SRCS))
	$(CC) $(CFLAGS) $(SAN_FLAGS) $^ -o $@ $(LDLIBS)

build/asan/unit/%: build/asan/obj/tests/unit/%.o $(call objs,asan,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN_FLAGS) $^ -o $@ $(LDLIBS) -lcmocka

UNIT_PLAIN := $(patsubst tests/unit/%.c,build/plain/unit/%,$(UNIT_SRCS))
UNIT_ASAN  := $(patsubst tests/unit/%.c,build/asan/unit/%,$(UNIT_SRCS))

# ---- the same sources with clang (warnings are errors there too) -------
build/clang/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(ALL_CFLAGS) -c $< -o $@

build/clang/correo: $(call objs,clang,src/main.c $(LIB_SRCS) $(UNIT_SRCS))
	clang $(CFLAGS) $(filter-out build/clang/obj/tests/%,$^) -o $@ $(LDLIBS)

# ---- fuzzing (clang + libFuzzer, with ASan/UBSan) ------------------------
FUZZ_CC    := clang
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CFLAGS) -O1 -g $(FUZZ_FLAGS) -c $< -o $@

build/fuzz/%: build/fuzz/obj/tests/fuzz/%.o $(call objs,fuzz,$(LIB_SRCS))
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $^ -o $@ $(LDLIBS)

FUZZERS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))

fuzz-build: deps $(FUZZERS)

# Replays every corpus, then explores a few seconds each: part of `make check`.
fuzz-replay: fuzz-build
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	  mkdir -p build/fuzz/corpus/$$n; \
	  dict=""; [ -f tests/fuzz/$$n.dict ] && dict="-dict=tests/fuzz/$$n.dict"; \
	  echo "fuzz: $$n"; \
	  $$f $$dict -max_total_time=5 -print_final_stats=0 \
	     -artifact_prefix=build/fuzz/$$n- \
	     build/fuzz/corpus/$$n tests/fuzz/corpus/$$n >build/fuzz/$$n.log 2>&1 \
	     || { tail -40 build/fuzz/$$n.log; exit 1; }; \
	done

fuzz: fuzz-build
	@for f in $(FUZZERS); do n=$$(basename $$f); \
	  mkdir -p build/fuzz/corpus/$$n; \
	  dict=""; [ -f tests/fuzz/$$n.dict ] && dict="-dict=tests/fuzz/$$n.dict"; \
	  echo "fuzz: $$n for $(FUZZ_TIME)s"; \
	  $$f $$dict -max_total_time=$(FUZZ_TIME) -artifact_prefix=build/fuzz/$$n- \
	     build/fuzz/corpus/$$n tests/fuzz/corpus/$$n || exit 1; \
	done

# ---- the disk fault shim (LD_PRELOAD) for tests/integration ------------
build/faults/libfaults.so: tests/faults/faults.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -shared -fPIC $< -o $@ -ldl

# ---- tests ---------------------------------------------------------------
unit: $(UNIT_PLAIN)
	@for t in $^; do echo "unit: $$t"; $$t || exit 1; done

integration: build/correo build/faults/libfaults.so
	CORREO_BIN=$(CURDIR)/build/correo $(PYTEST) $(PYTEST_ARGS) tests/integration

asan-check: build/asan/correo build/faults/libfaults.so $(UNIT_ASAN)
	@for t in $(UNIT_ASAN); do echo "unit (asan): $$t"; \
	  ASAN_OPTIONS=detect_leaks=1 $$t || exit 1; done
	CORREO_BIN=$(CURDIR)/build/asan/correo CORREO_SANITIZED=1 \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(PYTEST) $(PYTEST_ARGS) tests/integration

check: deps
	$(MAKE) all build/clang/correo
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) asan-check
	$(MAKE) fuzz-replay

run: deps build/correo
	./build/correo serve

# Side by side with Postfix and Dovecot (bench/README.md); not part of
# `make check`. Needs root (installs and starts them). BENCH_QUICK=1: a
# smoke run with tiny sizes; BENCH_ROUNDS=N: rounds per figure (3).
bench: deps
	$(MAKE) build/correo
	@mkdir -p build/bench
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) \
	  $$(pkg-config --cflags libevent_core libevent_openssl libssl) \
	  bench/imapload.c -o build/bench/imapload \
	  $$(pkg-config --libs libevent_core libevent_openssl libssl libcrypto)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) bench/diskprobe.c \
	  -o build/bench/diskprobe -lpthread
	CORREO_BIN=$(CURDIR)/build/correo \
	  IMAPLOAD_BIN=$(CURDIR)/build/bench/imapload /usr/bin/python3 bench/run

install: build/correo
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 \
	           $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 build/correo $(DESTDIR)$(PREFIX)/sbin/correo
	install -m 644 docs/correo.8 $(DESTDIR)$(PREFIX)/share/man/man8/correo.8
	install -m 644 docs/correo.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/correo.conf.5

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
