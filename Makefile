# Makefile for the queue extension (PGXS)
#
# The version lives in queue.control (default_version) and nowhere else;
# the install script queue--$(EXTVERSION).sql is built from src/sql/*.sql,
# concatenated in name order (a file per concern).  Install scripts of
# released versions are frozen in src/releases/ (CREATE EXTENSION ...
# VERSION 'old' keeps working, and the upgrade test starts from them);
# upgrade scripts live in src/updates/.  Both are installed as they are.

EXTENSION = queue
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = queue
OBJS = \
	src/queue.o \
	src/backoff.o \
	src/guc.o \
	src/names.o \
	src/enqueue.o \
	src/rowwriter.o \
	src/groups.o \
	src/locks.o \
	src/outbox.o \
	src/lease.o \
	src/shmem.o \
	src/wake.o \
	src/stats.o \
	src/worker.o

DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA = $(wildcard src/releases/$(EXTENSION)--*.sql) \
	$(wildcard src/updates/$(EXTENSION)--*--*.sql)

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels -Wformat-security

# pg_regress suites: sql/ and expected/, run on a private server that
# preloads the library (test/queue.conf).
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-instance=tmp_check --temp-config=$(srcdir)/test/queue.conf \
	--load-extension=queue

# isolation specs: test/isolation/specs and test/isolation/expected.
ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --temp-instance=tmp_check_iso --temp-config=$(srcdir)/test/queue.conf \
	--inputdir=$(srcdir)/test/isolation --outputdir=output_iso \
	--load-extension=queue

# TAP tests: test/t/*.pl with PostgreSQL::Test::Cluster.
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = $(EXTENSION)--$(EXTVERSION).sql tmp_check tmp_check_iso tmp_check_pgtap output_iso pgtap_results

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

INSTALL_SOURCES = $(sort $(wildcard src/sql/*.sql))

$(EXTENSION)--$(EXTVERSION).sql: $(INSTALL_SOURCES) $(EXTENSION).control
	cat $(INSTALL_SOURCES) > $@

# pgTAP tests: test/pgtap/sql/*.sql with expected output in
# test/pgtap/expected/, run by pg_regress on a private server (pgTAP prints
# TAP; any "not ok" is a difference from the expected output).
PGTAP_TESTS = $(patsubst test/pgtap/sql/%.sql,%,$(sort $(wildcard test/pgtap/sql/*.sql)))

.PHONY: installcheck-pgtap
installcheck-pgtap:
	$(pg_regress_installcheck) --temp-instance=tmp_check_pgtap \
		--temp-config=$(srcdir)/test/queue.conf \
		--inputdir=$(srcdir)/test/pgtap --outputdir=pgtap_results $(PGTAP_TESTS)
