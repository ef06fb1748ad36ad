# flags.mk -- the compiler flags that decide what the C core computes, in one place: read by the
# Makefile (include flags.mk) and by madam/_build_cmadam.py (which takes the CM_CFLAGS line below;
# keep it one line of plain flags). -ffp-contract=off (no FMA contraction) and the ISA builds of
# src/instantiate.h doing the same IEEE operations in the same order make every ISA build give the
# same bits; -fvisibility=hidden leaves only the public API exported (see include/cmadam.h).
# Optimisation, warnings and sanitizers are each build's own.
CM_CFLAGS := -std=c11 -fopenmp -ffp-contract=off -fno-math-errno -fvisibility=hidden
