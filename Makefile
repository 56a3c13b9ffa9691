# PGXS build for the personalisation extension.

EXTENSION    = personalisation
EXTVERSION   = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")
MODULE_big   = $(EXTENSION)
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
PG_CPPFLAGS  = -Isrc
PG_CFLAGS    = -Werror -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels -Wformat-security

# The install script is the concatenation of the parts below, in dependency order.
SQL_PARTS    = sql/schema.sql sql/measurement.sql sql/events.sql sql/identity.sql sql/affinity.sql sql/complement.sql sql/subscriptions.sql sql/outbox.sql sql/journeys.sql sql/post_purchase.sql sql/uplift.sql sql/maintenance.sql sql/worker.sql sql/privacy.sql sql/backup.sql sql/security.sql
# The install script of the version under development is built from the parts;
# released install scripts (sql/personalisation--0.1.0.sql) are kept as shipped,
# and each upgrade script A--B carries every SQL change from release A to B.
DATA_built   = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA         = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))
EXTRA_CLEAN  = $(DATA_built)

# pg_regress tests (test/sql, expected/), run in this order by the test command.
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

.PHONY: print-regress
print-regress:
	@echo $(REGRESS)
