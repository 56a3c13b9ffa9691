# PGXS build for the personalisation extension.

EXTENSION    = personalisation
EXTVERSION   = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")
MODULE_big   = $(EXTENSION)
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
PG_CPPFLAGS  = -Isrc
PG_CFLAGS    = -Werror -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels -Wformat-security

# The install script is the concatenation of the parts in sql/install/, in
# dependency order.  sql/ itself holds the pg_regress inputs (sql/NAME.sql,
# expected/NAME.out), where PostgreSQL 15's pg_regress looks for them.
SQL_PARTS    = $(addprefix sql/install/,$(addsuffix .sql,schema measurement events identity affinity complement subscriptions outbox journeys post_purchase uplift maintenance worker privacy backup security))
# The install script of the version under development is built from the parts;
# released install scripts (sql/personalisation--0.1.0.sql) are kept as shipped,
# and each upgrade script A--B carries every SQL change from release A to B.
DATA_built   = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA         = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))
EXTRA_CLEAN  = $(DATA_built)

# pg_regress tests (sql/NAME.sql, expected/NAME.out), in this order:
# `make installcheck` runs them against a running server (PGHOST, PGPORT or
# EXTRA_REGRESS_OPTS="--host=... --port=..."), which must preload pg_cron and
# personalisation with the settings of test/personalisation.conf.
REGRESS      = setup ingest consent identity ranking complement

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object depends on the shared headers (PGXS tracks no header dependencies).
$(OBJS): $(wildcard src/*.h)

$(DATA_built): $(SQL_PARTS) $(EXTENSION).control
	cat $(SQL_PARTS) > $@

# The README's two commands: both install what they need, then run against a throw-away instance.
.PHONY: test demo demo-stop bench
test:
	bash test/run.sh

demo:
	bash test/demo.sh

demo-stop:
	bash test/demo.sh stop

bench:
	bash bench/run.sh
