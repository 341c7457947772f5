# runtime_sweeper: PGXS build.  `make`, `make install`, then `test/run` for every suite.

EXTENSION = runtime_sweeper
MODULE_big = runtime_sweeper
DATA = $(wildcard sql/runtime_sweeper--*.sql)
PGFILEDESC = "runtime_sweeper - in-database runtime and task sweeper"

SRCS = $(sort $(wildcard src/*.cpp src/stages/*.cpp src/liveness/*.cpp))
OBJS = $(SRCS:.cpp=.o)
SRC_HEADERS = $(wildcard src/*.hpp src/stages/*.hpp src/liveness/*.hpp)

# pg_regress: tests live in sql/ and expected/; the temporary instance preloads the library.
REGRESS = $(sort $(basename $(notdir $(filter-out sql/runtime_sweeper--%.sql,$(wildcard sql/*.sql)))))
REGRESS_OPTS = --temp-instance=tmp_check --temp-config=test/regress.conf

# Isolation specs: test/specs/*.spec, expected output in test/expected/.
ISOLATION = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --outputdir=output_iso --temp-instance=tmp_check_iso --temp-config=test/regress.conf

EXTRA_CLEAN = output_iso tmp_check_iso

# C++17 inside PostgreSQL: no exceptions across the boundary are allowed by
# construction (see src/pg_bridge.hpp); warnings are errors.
PG_CXXFLAGS = -std=c++17 -fPIC -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-register -Wno-cast-function-type
PG_CPPFLAGS = -I$(srcdir)/src
# PGXS links with the C compiler: name the C++ runtime and hiredis explicitly.
SHLIB_LINK += -lhiredis -lstdc++

# Debian's PGXS would also build LLVM bitcode for JIT inlining; the sweep runs
# set-based SQL through SPI, so there is nothing in this library worth inlining.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(OBJS): $(SRC_HEADERS)
