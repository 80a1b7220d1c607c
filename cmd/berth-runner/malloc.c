// glibc's malloc gives each new thread its own arena (a 64 MB mapping,
// trimmed, with its own page faults) the first time the thread frees or
// allocates, and every thread the Go runtime starts in this cgo binary is a
// pthread that does: a few hundred microseconds of CPU for each of the
// runtime's and the container init's five or so threads. Their C side
// (libseccomp, the nsenter setup) allocates little, so one arena serves
// them all. This runs before the Go runtime starts any thread.

#include <malloc.h>

__attribute__((constructor)) static void berth_one_malloc_arena(void)
{
	mallopt(M_ARENA_MAX, 1);
}
