// Software prefetch for the numeric kernels (Swift has no prefetch intrinsic). Header-only: Swift inlines these.
#ifndef CPREFETCH_H
#define CPREFETCH_H

/// Asks for the cache line holding `p` to be brought into all cache levels (prefetcht0); never faults.
static inline __attribute__((always_inline)) void calib_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif
