# chrun: make | make check | make demo | make bench | make install
VERSION := 0.1.0
.DEFAULT_GOAL := all
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=

PKGS := libarchive libcrypto jansson libcurl libsodium libisal libzstd
# Evaluated when make reads this file, before `deps` can install anything:
# quiet, since check, demo and bench build in a sub-make after install-deps.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libarchive is linked statically (ARCHIVE_LINK=static, the default, when
# libarchive.a is installed): the shared library drags libxml2, ICU and
# libstdc++ into every program's start-up (about 2 ms of relocations, 3x the
# whole of chrun-exec) for formats chrun never reads. Only the objects a
# program calls are linked in, and --as-needed keeps only the shared
# libraries those objects use: the pax writer still brings libarchive's
# writer table (xar needs libxml2) into save, export and build, but pull,
# load, unpack, gc and the front door load no libxml2 and no ICU. The
# cost: a libarchive security update needs a rebuild (`make ARCHIVE_LINK=shared`
# links the shared library instead).
ARCHIVE_LINK ?= static
ARCHIVE_A := $(if $(filter static,$(ARCHIVE_LINK)),$(wildcard $(shell pkg-config --variable=libdir libarchive 2>/dev/null)/libarchive.a))
ARCHIVE_LIBS := $(if $(ARCHIVE_A),$(ARCHIVE_A) $(filter-out -larchive,$(shell pkg-config --static --libs libarchive 2>/dev/null)),$(shell pkg-config --libs libarchive 2>/dev/null))
PKG_LIBS := -Wl,--as-needed $(ARCHIVE_LIBS) $(shell pkg-config --libs $(filter-out libarchive,$(PKGS)) 2>/dev/null) -lpthread

CC ?= cc
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc -DCHRUN_VERSION='"$(VERSION)"' $(WARN) $(PKG_CFLAGS)
OPT_CFLAGS ?= -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
SAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRCS := $(sort $(wildcard src/*.c))
TOOL_SRCS := $(sort $(wildcard tools/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/test-*.c))
HEADERS := $(wildcard include/chrun/*.h src/*.h tests/unit/*.h)
TOOLS := $(patsubst tools/%.c,%,$(TOOL_SRCS))
MANPAGES := $(wildcard man/*.1)

# Two builds of everything: B=build (optimized, hardened) and B=build-san (ASan+UBSan).
define build_tree
$(1)/obj/%.o: src/%.c $(HEADERS) | $(1)/obj
	$$(CC) $(BASE_CFLAGS) $(2) $$(CFLAGS) -c $$< -o $$@
$(1)/libchrun.a: $(patsubst src/%.c,$(1)/obj/%.o,$(LIB_SRCS))
	rm -f $$@ && ar rcs $$@ $$^
$(1)/bin/%: tools/%.c $(1)/libchrun.a $(HEADERS) | $(1)/bin
	$$(CC) $(BASE_CFLAGS) $(2) $$(CFLAGS) $$< $(1)/libchrun.a -o $$@ $(PKG_LIBS) $$(LDFLAGS)
$(1)/unit/%: tests/unit/%.c $(1)/libchrun.a $(HEADERS) | $(1)/unit
	$$(CC) $(BASE_CFLAGS) $(2) $$(CFLAGS) -Itests/unit $$< $(1)/libchrun.a -o $$@ $(PKG_LIBS) $$(LDFLAGS)
$(1)/obj $(1)/bin $(1)/unit:
	mkdir -p $$@
endef
$(eval $(call build_tree,build,$(OPT_CFLAGS)))
$(eval $(call build_tree,build-san,$(SAN_CFLAGS)))

BINS := $(addprefix bin/,$(TOOLS))
UNITS := $(patsubst tests/unit/%.c,build/unit/%,$(UNIT_SRCS))
SAN_BINS := $(addprefix build-san/bin/,$(TOOLS))
SAN_UNITS := $(patsubst tests/unit/%.c,build-san/unit/%,$(UNIT_SRCS))

.PHONY: all units check check-loaded san demo bench install format clean deps fuzz fuzz-build
.SECONDARY:

all: $(BINS)

bin/%: build/bin/%
	@mkdir -p bin
	cp -f $< $@

san: $(SAN_BINS) $(SAN_UNITS)

units: $(UNITS)

# check, demo and bench set the machine up first (idempotent, offline when
# everything is installed), then build in a fresh make that sees pkg-config.
deps:
	scripts/install-deps

check: deps
	$(MAKE) -j$$(nproc) all units san
	tests/run

# check-loaded: make check with a busy loop on every core beside it, to show
# that no test depends on timing (tests wait on events, never on sleep).
check-loaded:
	scripts/with-busy-cores $(MAKE) check

# fuzz: libFuzzer harnesses fuzz/fuzz-*.c built with clang into build-fuzz/;
# fuzz/run checks the toolchain, builds them (fuzz-build) and runs each for
# FUZZ_SECONDS (default 60) over testdata/fuzz/<harness>/. FUZZ=NAME... picks.
# clang warns where gcc does not: its warnings are shown, not fatal, here.
FUZZ_CC ?= $(shell command -v clang-14 || command -v clang || echo clang)
FUZZ_CFLAGS := -Wno-error -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined
FUZZERS := $(patsubst fuzz/%.c,build-fuzz/%,$(wildcard fuzz/fuzz-*.c))

fuzz:
	FUZZ_CC='$(FUZZ_CC)' fuzz/run $(FUZZ)

fuzz-build: $(FUZZERS)

build-fuzz/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_CFLAGS) -c $< -o $@
build-fuzz/libchrun.a: $(patsubst src/%.c,build-fuzz/obj/%.o,$(LIB_SRCS))
	rm -f $@ && ar rcs $@ $^
build-fuzz/fuzz-%: fuzz/fuzz-%.c fuzz/fuzz-common.h build-fuzz/libchrun.a $(HEADERS)
	$(FUZZ_CC) $(BASE_CFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< build-fuzz/libchrun.a -o $@ \
		$(PKG_LIBS)

demo: deps
	$(MAKE) all
	scripts/demo

bench: deps
	$(MAKE) all
	scripts/bench

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	$(if $(MANPAGES),install -m 0644 $(MANPAGES) $(DESTDIR)$(MANDIR)/man1/)

format:
	clang-format -i $(LIB_SRCS) $(TOOL_SRCS) $(UNIT_SRCS) $(HEADERS)

clean:
	rm -rf build build-san build-fuzz bin
