# ringfetch - plain Makefile. `make` builds the libraries and the command line tool in
# build/; SANITIZE=address,undefined builds into build-san/; B=DIR picks another build
# directory; V=1 shows commands; WOLFSSL=system links Debian's libwolfssl instead of the
# wolfSSL built from Debian's source (see below).

SANITIZE ?=
ifeq ($(SANITIZE),)
B ?= build
else
B ?= build-san
endif

CC ?= cc
PKGS := liburing libcares libidn2
LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wvla
# OPT and CFLAGS may be set on the command line; the flags the build needs are in BASE.
OPT ?= -O2 -g
BASE := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -MMD -MP
CPPFLAGS += -Iinclude -Iengine -I$(LLHTTP_INC) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -luring -lcares -lidn2) -lpthread

# wolfSSL. WOLFSSL=source (the default): 5.5.4 built once from Debian's source package with
# AES-NI and the x86-64 assembly by scripts/wolfssl-build into build/wolfssl/, shared by every
# build directory, and linked into libringfetch (.a and .so) so that users link only
# -lringfetch. WOLFSSL=system: Debian's libwolfssl, which has neither. Engine code includes
# <wolfssl/options.h> first, from whichever is in use; RF_WOLFSSL_BUILD names it.
WOLFSSL ?= source
ifeq ($(WOLFSSL),source)
WOLFSSL_PREFIX := $(shell scripts/wolfssl-build --prefix)
ifeq ($(WOLFSSL_PREFIX),)
$(error scripts/wolfssl-build --prefix printed nothing)
endif
WOLFSSL_STAMP := $(WOLFSSL_PREFIX)/stamp
WOLFSSL_A := $(WOLFSSL_PREFIX)/lib/libwolfssl.a
CPPFLAGS := -I$(WOLFSSL_PREFIX)/include -DRF_WOLFSSL_BUILD='"source build with AES-NI"' $(CPPFLAGS)
# libwolfssl.a calls log() and pow() from libm besides libc and the pthread mutexes.
LDLIBS += -lm
# In the shared library wolfSSL's symbols stay internal: its API is rf_*, and a program that
# also loads the system libwolfssl must not get ours.
SO_WOLFSSL := $(WOLFSSL_A) -Wl,--exclude-libs,libwolfssl.a
else ifeq ($(WOLFSSL),system)
CPPFLAGS := $(shell pkg-config --cflags wolfssl 2>/dev/null) \
            -DRF_WOLFSSL_BUILD='"Debian system library"' $(CPPFLAGS)
LDLIBS += $(shell pkg-config --libs wolfssl 2>/dev/null || echo -lwolfssl)
else
$(error WOLFSSL is source or system, not '$(WOLFSSL)')
endif
ifneq ($(SANITIZE),)
BASE += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
SANLD := -fsanitize=$(SANITIZE)
endif
ALL_CFLAGS = $(BASE) $(OPT) $(CFLAGS)
ALL_LDFLAGS = $(SANLD) $(LDFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

ENGINE_SRC := $(filter-out engine/cli/%,$(wildcard engine/*/*.c))
CLI_SRC := $(wildcard engine/cli/*.c)
LLHTTP_SRC := $(wildcard $(LLHTTP_DIR)/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(B)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/obj/%.o)
LLHTTP_OBJ := $(patsubst $(LLHTTP_DIR)/%.c,$(B)/obj/llhttp/%.o,$(LLHTTP_SRC))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)

LIB_A := $(B)/libringfetch.a
# The same objects as one archive whose internal symbols stay global: the command line tool,
# the unit tests and the fuzz targets call internal functions. LIB_A exports only rf_*
# (see "The public archive" below).
LIB_INTERNAL_A := $(B)/libringfetch-internal.a
LIB_SO := $(B)/libringfetch.so
BIN := $(B)/ringfetch

.PHONY: all clean distclean test test-san demo setup unit fuzz fuzz-regress fuzz-bins FORCE
all: $(LIB_A) $(LIB_SO) $(BIN) $(UNIT_BIN)

# Which wolfSSL the objects in $(B) were compiled against. The file changes only when the
# choice does, and then everything that includes wolfSSL's headers is rebuilt: objects of one
# wolfSSL's options.h must never link against the other.
WOLFSSL_CHOICE := $(WOLFSSL) $(WOLFSSL_PREFIX)
$(B)/wolfssl.choice: FORCE
	@mkdir -p $(dir $@)
	@echo '$(WOLFSSL_CHOICE)' | cmp -s - $@ || echo '$(WOLFSSL_CHOICE)' >$@

$(ENGINE_OBJ) $(CLI_OBJ): $(B)/wolfssl.choice $(WOLFSSL_STAMP)

ifneq ($(WOLFSSL_STAMP),)
$(WOLFSSL_STAMP):
	$(Q)scripts/wolfssl-build
endif

$(ENGINE_OBJ): $(B)/obj/engine/%.o: engine/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(WARN) -DRF_BUILDING_LIBRARY -c $< -o $@

# llhttp's generated C is compiled as shipped, without our warning set.
$(B)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -w -c $< -o $@

# With WOLFSSL=source the archive starts as a copy of libwolfssl.a (its members are named
# src_libwolfssl_la-*.o and libwolfssl_la-*.o, so none is replaced by ours).
$(LIB_INTERNAL_A): $(ENGINE_OBJ) $(LLHTTP_OBJ) $(B)/wolfssl.choice $(WOLFSSL_STAMP)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ $@.tmp && $(if $(WOLFSSL_A),cp $(WOLFSSL_A) $@.tmp &&) \
	    ar rcs $@.tmp $(ENGINE_OBJ) $(LLHTTP_OBJ) && mv $@.tmp $@

$(LIB_SO): $(ENGINE_OBJ) $(LLHTTP_OBJ) $(B)/wolfssl.choice $(WOLFSSL_STAMP)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-z,defs -Wl,-soname,$(LIB_SONAME) $(ALL_LDFLAGS) \
	    $(ENGINE_OBJ) $(LLHTTP_OBJ) $(SO_WOLFSSL) -o $@ $(LDLIBS)

# The command line tool is a client of the public API: it sees include/ and its own folder
# only, and links the archive that exports nothing but rf_*.
$(BIN): $(CLI_OBJ) $(LIB_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) $(CLI_OBJ) $(LIB_A) -o $@ $(LDLIBS) -lm

$(B)/obj/engine/cli/%.o: engine/cli/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) -Iinclude -Iengine/cli $(ALL_CFLAGS) $(WARN) -c $< -o $@

$(B)/tests/%: tests/unit/%.c $(LIB_INTERNAL_A) tests/unit/check.h tests/unit/drive.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit $(ALL_CFLAGS) $(WARN) $(ALL_LDFLAGS) $< $(LIB_INTERNAL_A) -o $@ $(LDLIBS) -lm

setup:
	$(Q)scripts/setup

# The two commands of the README. Both install what is missing first.
demo: setup
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/demo

test: setup
	$(Q)$(MAKE) --no-print-directory all
	$(Q)/usr/bin/python3 tests/run.py --build $(B)

test-san: setup
	$(Q)$(MAKE) --no-print-directory SANITIZE=address,undefined OPT="-O1 -g" all
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    /usr/bin/python3 tests/run.py --build build-san

# libFuzzer targets (tests/fuzz/fuzz_NAME.c, seeds in tests/fuzz/corpus-NAME/): built with
# clang, ASan and UBSan into build-fuzz/. `make fuzz` first replays the seeds and the saved
# crashes (fuzz-regress), then runs each target FUZZ_SECONDS on its corpus copied to
# build-fuzz/corpus-NAME (new inputs land there, crash files in build-fuzz/ too).
FUZZ_B := build-fuzz
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 150
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_NAMES:%=$(B)/fuzz/fuzz_%)

fuzz-bins: $(FUZZ_BIN)

# Only inside the fuzz build (SANITIZE holds fuzzer-no-link): -fsanitize=fuzzer adds main().
FUZZ_CLI_OBJ := $(B)/obj/engine/cli/lines.o $(B)/obj/engine/cli/targets.o $(B)/obj/engine/cli/values.o
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(LIB_INTERNAL_A) $(FUZZ_CLI_OBJ) tests/unit/drive.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit -Iengine/cli $(ALL_CFLAGS) $(WARN) -fsanitize=fuzzer \
	    $(ALL_LDFLAGS) $< $(FUZZ_CLI_OBJ) $(LIB_INTERNAL_A) -o $@ $(LDLIBS)

fuzz-regress:
	$(Q)$(MAKE) --no-print-directory B=$(FUZZ_B) CC=$(FUZZ_CC) OPT="-O1 -g" \
	    SANITIZE=fuzzer-no-link,address,undefined fuzz-bins
	$(Q)for n in $(FUZZ_NAMES); do \
	    files=$$(ls -d tests/fuzz/corpus-$$n/* tests/fuzz/crashes-$$n/* 2>/dev/null); \
	    echo "  REGRESS fuzz_$$n ($$(echo "$$files" | wc -w) files)"; \
	    $(FUZZ_B)/fuzz/fuzz_$$n $$files >$(FUZZ_B)/regress-$$n.log 2>&1 || \
	        { tail -n 30 $(FUZZ_B)/regress-$$n.log; exit 1; }; \
	done

fuzz: fuzz-regress
	$(Q)fail=0; for n in $(FUZZ_NAMES); do \
	    mkdir -p $(FUZZ_B)/corpus-$$n && cp tests/fuzz/corpus-$$n/* $(FUZZ_B)/corpus-$$n/; \
	    echo "  FUZZ    fuzz_$$n for $(FUZZ_SECONDS) s"; \
	    $(FUZZ_B)/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_B)/crash-$$n- \
	        $(FUZZ_B)/corpus-$$n >$(FUZZ_B)/fuzz-$$n.log 2>&1 || fail=1; \
	    grep -E 'DONE|ERROR|SUMMARY|Test unit written' $(FUZZ_B)/fuzz-$$n.log | tail -n 4; \
	done; \
	if [ $$fail != 0 ]; then echo "fuzz: crash; see $(FUZZ_B)/fuzz-*.log and $(FUZZ_B)/crash-*"; fi; \
	exit $$fail

# clean keeps build/wolfssl, the wolfSSL build (a minute or more to redo); distclean not.
clean:
	rm -rf $(filter-out build/wolfssl,$(wildcard build/*)) build-san build-fuzz

distclean:
	rm -rf build build-san build-fuzz

# ---------------------------------------------------------------------------------------
# The public archive, the versioned shared library and `make install`.

# The version is the header's (RINGFETCH_VERSION_*); the SONAME changes with its major.
rf_version_part = $(shell sed -n 's/^.define RINGFETCH_VERSION_$(1)  *\([0-9][0-9]*\)$$/\1/p' \
                      include/ringfetch.h)
VERSION_MAJOR := $(call rf_version_part,MAJOR)
VERSION_MINOR := $(call rf_version_part,MINOR)
VERSION_PATCH := $(call rf_version_part,PATCH)
ifneq ($(words $(VERSION_MAJOR) $(VERSION_MINOR) $(VERSION_PATCH)),3)
$(error include/ringfetch.h: no RINGFETCH_VERSION_MAJOR, _MINOR and _PATCH numbers)
endif
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
LIB_SONAME := libringfetch.so.$(VERSION_MAJOR)

# The public archive is one relocatable object: the engine, llhttp and (WOLFSSL=source)
# every member of libwolfssl.a linked by ld -r, in which every global symbol but the rf_
# API (the default-visibility rf_* names, exactly what the shared library exports) is then
# made local. A program linking it may define its own url_parse() or link OpenSSL or
# Debian's wolfSSL without clashing; libc, liburing, c-ares, libm and pthread stay
# undefined, for the final link.
LIB_REL := $(B)/obj/libringfetch.o
LIB_SYMS := $(B)/obj/libringfetch.syms

$(LIB_REL): $(ENGINE_OBJ) $(LLHTTP_OBJ) $(B)/wolfssl.choice $(WOLFSSL_STAMP)
	@$(if $(Q),echo "  LD -r   $@")
	$(Q)$(LD) -r -o $@.tmp $(ENGINE_OBJ) $(LLHTTP_OBJ) \
	    $(if $(WOLFSSL_A),--whole-archive $(WOLFSSL_A) --no-whole-archive)
	$(Q)readelf -sW $@.tmp | awk '$$5 == "GLOBAL" && $$6 == "DEFAULT" && $$7 != "UND" && \
	    $$8 ~ /^rf_/ { print $$8 }' | sort >$(LIB_SYMS) && test -s $(LIB_SYMS)
	$(Q)objcopy --keep-global-symbols=$(LIB_SYMS) $@.tmp $@ && rm -f $@.tmp

$(LIB_A): $(LIB_REL)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $(LIB_REL)

# In the build directory too, so that programs linked with -Lbuild run with
# LD_LIBRARY_PATH=build.
all: $(B)/$(LIB_SONAME)
$(B)/$(LIB_SONAME): $(LIB_SO)
	@$(if $(Q),echo "  LN      $@")
	$(Q)ln -sfn $(notdir $(LIB_SO)) $@

# make install [PREFIX=/usr/local] [DESTDIR=] [LIBDIR=PREFIX/lib] installs the command, the
# header, both libraries, ringfetch.pc and the man pages; make uninstall with the same
# variables removes them. Both refresh the loader's cache with LDCONFIG when run by root
# with DESTDIR empty (LDCONFIG=: skips it): /usr/local/lib is searched through that cache.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL ?= install
LDCONFIG ?= ldconfig

HEADERS := $(wildcard include/*.h)
MAN1 := $(wildcard docs/man/*.1)
MAN3 := $(wildcard docs/man/*.3)
LIB_REAL := libringfetch.so.$(VERSION)

# ringfetch.pc: a static link needs liburing and c-ares (their .pc files), pthread, libm
# (wolfSSL's log() and pow()) and, with WOLFSSL=system, Debian's wolfSSL, named before
# -lm: its wolfssl.pc does not list libm, and a static libm must come after its users.
PC_REQUIRES := $(PKGS)
PC_LIBS := $(if $(filter system,$(WOLFSSL)),-lwolfssl) -lpthread -lm
# Under PREFIX, the directories are written relative to ${prefix}.
pc_dir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

.PHONY: install uninstall
install: $(LIB_A) $(LIB_SO) $(BIN)
	@$(if $(Q),echo "  INSTALL $(DESTDIR)$(PREFIX)")
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) \
	    $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	$(Q)$(INSTALL) -m 755 $(BIN) $(DESTDIR)$(BINDIR)/ringfetch
	$(Q)$(INSTALL) -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/
	$(Q)$(INSTALL) -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libringfetch.a
	$(Q)$(INSTALL) -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/$(LIB_REAL)
	$(Q)ln -sfn $(LIB_REAL) $(DESTDIR)$(LIBDIR)/$(LIB_SONAME)
	$(Q)ln -sfn $(LIB_SONAME) $(DESTDIR)$(LIBDIR)/libringfetch.so
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_dir,$(LIBDIR))|' \
	    -e 's|@INCLUDEDIR@|$(call pc_dir,$(INCLUDEDIR))|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@REQUIRES_PRIVATE@|$(PC_REQUIRES)|' -e 's|@LIBS_PRIVATE@|$(strip $(PC_LIBS))|' \
	    ringfetch.pc.in >$(B)/ringfetch.pc
	$(Q)$(INSTALL) -m 644 $(B)/ringfetch.pc $(DESTDIR)$(PKGCONFIGDIR)/ringfetch.pc
	$(Q)$(INSTALL) -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	$(Q)$(INSTALL) -m 644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/
	$(Q)$(if $(DESTDIR),,[ "$$(id -u)" != 0 ] || $(LDCONFIG))

uninstall:
	@$(if $(Q),echo "  REMOVE  $(DESTDIR)$(PREFIX)")
	$(Q)rm -f $(DESTDIR)$(BINDIR)/ringfetch $(HEADERS:include/%=$(DESTDIR)$(INCLUDEDIR)/%) \
	    $(addprefix $(DESTDIR)$(LIBDIR)/,libringfetch.a $(LIB_REAL) $(LIB_SONAME) \
	        libringfetch.so) \
	    $(DESTDIR)$(PKGCONFIGDIR)/ringfetch.pc \
	    $(MAN1:docs/man/%=$(DESTDIR)$(MANDIR)/man1/%) $(MAN3:docs/man/%=$(DESTDIR)$(MANDIR)/man3/%)
	$(Q)$(if $(DESTDIR),,[ "$$(id -u)" != 0 ] || $(LDCONFIG))

-include $(ENGINE_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_BIN:=.d)

# ---- unit tests of command line files ----
# A test of a file in engine/cli/ (not in the library) links that file's object itself.
$(B)/tests/test_json: tests/unit/test_json.c $(B)/obj/engine/cli/json.o tests/unit/check.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit -Iengine/cli $(ALL_CFLAGS) $(WARN) $(ALL_LDFLAGS) $< \
	    $(B)/obj/engine/cli/json.o -o $@ -lm

# ---------------------------------------------------------------------------------------
# The C API tests under ThreadSanitizer and valgrind (tests/integration/test_api.py, whose
# programs are tests/api/*.c).
#
# make test-tsan: build-tsan/ built with SANITIZE=thread, then the C API tests and the
# integration tests that run several ring threads (fetch -t 3, https -t 2, bench -t 2),
# with halt_on_error so that any race report fails its test. In CI after test-san.
# make test-valgrind: the C API tests' programs, built against $(B), each run under
# valgrind with tests/valgrind.supp (smaller runs); any error fails. Slow: not in CI.

TSAN_B := build-tsan
TSAN_TESTS := -k test_api:: -k test_fetch::test_every_line_one_row_in_order \
              -k test_tls::test_many_at_once -k test_bench::test_duration_and_schema
# GCC 12's TSan expects the kernel's default mmap randomisation (vm.mmap_rnd_bits 28);
# with more, its shadow mappings can collide ("unexpected memory mapping"): then the tests
# run with ASLR off.
TSAN_SETARCH := $(shell [ "$$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)" -gt 28 ] \
                    && echo setarch "$$(uname -m)" -R)
VALGRIND := valgrind --quiet --error-exitcode=1 --num-callers=40 \
            --suppressions=$(CURDIR)/tests/valgrind.supp \
            --leak-check=full --errors-for-leak-kinds=definite

.PHONY: test-tsan test-valgrind clean-tsan
test-tsan: setup
	$(Q)$(MAKE) --no-print-directory B=$(TSAN_B) SANITIZE=thread OPT="-O1 -g" all
	$(Q)TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" $(TSAN_SETARCH) \
	    /usr/bin/python3 tests/run.py --build $(TSAN_B) $(TSAN_TESTS)

test-valgrind: setup
	$(Q)scripts/setup valgrind
	$(Q)$(MAKE) --no-print-directory all
	$(Q)RF_API_WRAP="$(VALGRIND)" /usr/bin/python3 tests/run.py --build $(B) -k test_api::

# clean and distclean take build-tsan/ too.
clean distclean: clean-tsan
clean-tsan:
	rm -rf $(TSAN_B)
