/*
 * kmemu vmem reference: the userland kernel environment subr_vmem.c is built against.
 * Written for kmemu (not copied from FreeBSD): single-threaded, libc-backed.
 * Every sys/... and vm/... header of the shim includes this one file.
 */
#ifndef _KMEMU_SHIM_H_
#define _KMEMU_SHIM_H_

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

/* ---- sys/cdefs.h, sys/param.h, sys/systm.h */
#ifndef __FBSDID
#define __FBSDID(s)		struct __hack
#endif
#ifndef __unused
#define __unused		__attribute__((__unused__))
#endif
#define __predict_true(e)	__builtin_expect(!!(e), 1)
#define __predict_false(e)	__builtin_expect(!!(e), 0)
#define __printflike(f, a)	__attribute__((__format__(__printf__, f, a)))
#define __exclusive_cache_line	__attribute__((__aligned__(64)))
#define __inline		inline

#define NBBY	8
#undef MIN
#undef MAX
#define MIN(a, b)	(((a) < (b)) ? (a) : (b))
#define MAX(a, b)	(((a) > (b)) ? (a) : (b))
#undef roundup
#undef howmany
#define howmany(x, y)	(((x) + ((y) - 1)) / (y))
#define roundup(x, y)	((((x) + ((y) - 1)) / (y)) * (y))
#ifndef nitems
#define nitems(x)	(sizeof((x)) / sizeof((x)[0]))
#endif
#ifndef TRUE
#define TRUE	1
#define FALSE	0
#endif

typedef unsigned int	u_int;
typedef unsigned long	u_long;
typedef uintptr_t	vm_offset_t;
typedef uintptr_t	vm_size_t;

static inline int
flsl(long mask)
{
	return (mask == 0 ? 0 : (int)(sizeof(mask) * NBBY) - __builtin_clzl((unsigned long)mask));
}

static inline size_t
kmemu_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);

	if (size != 0) {
		size_t n = len >= size ? size - 1 : len;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return (len);
}
#define strlcpy	kmemu_strlcpy

/* The script line being run, for panic messages (set by the driver). */
extern int kmemu_lineno;

/* panic(): print the message and exit 4. */
void kmemu_panic(const char *fmt, ...) __printflike(1, 2) __attribute__((__noreturn__));
#define panic	kmemu_panic

#define KASSERT(exp, msg) do {						\
	if (__predict_false(!(exp)))					\
		kmemu_panic msg;					\
} while (0)
#define MPASS(ex)	MPASS4(ex, #ex, __FILE__, __LINE__)
#define MPASS4(ex, what, file, line)					\
	KASSERT((ex), ("Assertion %s failed at %s:%d", what, file, line))
#define WITNESS_WARN(flags, lock, ...)	((void)0)
#define WARN_GIANTOK	0x01
#define WARN_SLEEPOK	0x02
#define mp_ncpus	1
extern int hz;

/* ---- sys/kernel.h, sys/sysctl.h: boot-time registration is not needed. */
#define SYSINIT(uniquifier, subsystem, order, func, ident)		\
	struct __hack
#define SYSCTL_INT(parent, nbr, name, access, ptr, val, descr)		\
	struct __hack
#define SI_SUB_CONFIGURE	0
#define SI_ORDER_ANY		0
#define OID_AUTO		(-1)
#define CTLFLAG_RWTUN		0

/* ---- sys/malloc.h: the kernel malloc(9) on libc. */
#define M_NOWAIT	0x0001
#define M_WAITOK	0x0002
#define M_ZERO		0x0100
#define M_NOVM		0x0200
#define M_USE_RESERVE	0x0400
#define M_NODUMP	0x0800
#define M_FIRSTFIT	0x1000
#define M_BESTFIT	0x2000
#define M_EXEC		0x4000

struct malloc_type { const char *ks_shortdesc; };
#define MALLOC_DEFINE(type, shortdesc, longdesc)			\
	struct malloc_type type[1] = { { shortdesc } }

void *kmemu_kmalloc(size_t size, struct malloc_type *type, int flags);
void kmemu_kfree(void *addr, struct malloc_type *type);
#define malloc(size, type, flags)	kmemu_kmalloc((size), (type), (flags))
#define free(addr, type)		kmemu_kfree((addr), (type))

/* ---- sys/lock.h, sys/mutex.h: one thread; a lock is a depth count for assertions. */
struct mtx { const char *mtx_name; int mtx_owned; };
struct mtx_padalign { const char *mtx_name; int mtx_owned; } __attribute__((__aligned__(64)));
#define MTX_DEF		0
#define MA_OWNED	1
#define MA_NOTOWNED	0
#define mtx_init(m, name, type, opts)	((m)->mtx_name = (name), (m)->mtx_owned = 0)
#define mtx_destroy(m)	KASSERT((m)->mtx_owned == 0, ("destroying held mutex %s", (m)->mtx_name))
#define mtx_lock(m) do {						\
	KASSERT((m)->mtx_owned == 0, ("recursed on mutex %s", (m)->mtx_name)); \
	(m)->mtx_owned = 1;						\
} while (0)
#define mtx_trylock(m)	((m)->mtx_owned ? 0 : ((m)->mtx_owned = 1))
#define mtx_unlock(m) do {						\
	KASSERT((m)->mtx_owned == 1, ("unlocking unheld mutex %s", (m)->mtx_name)); \
	(m)->mtx_owned = 0;						\
} while (0)
#define mtx_assert(m, what)						\
	KASSERT(((m)->mtx_owned != 0) == ((what) == MA_OWNED),		\
	    ("mutex %s not %s", (m)->mtx_name, (what) == MA_OWNED ? "owned" : "unowned"))

/* ---- sys/condvar.h: nobody else can ever signal, so a wait would sleep forever. */
struct cv { const char *cv_description; };
#define cv_init(cvp, desc)	((cvp)->cv_description = (desc))
#define cv_destroy(cvp)		((void)(cvp))
#define cv_broadcast(cvp)	((void)(cvp))
#define cv_wait(cvp, m)							\
	kmemu_panic("cv_wait on \"%s\" would block forever (single-threaded reference; use M_NOWAIT)", \
	    (cvp)->cv_description)

/* ---- sys/callout.h, sys/taskqueue.h: the periodic rehash never runs. */
struct callout { int c_unused; };
struct task { int ta_unused; };
struct taskqueue;
extern struct taskqueue *taskqueue_thread;
#define callout_init(c, mpsafe)		((void)(c))
#define callout_reset(c, ticks, fn, arg) ((void)(c))
#define TASK_INIT(task, prio, fn, ctx)	((void)(task))
static inline int
taskqueue_enqueue(struct taskqueue *tq, struct task *task)
{
	(void)tq; (void)task;
	return (0);
}

/* ---- sys/hash.h: FreeBSD's hash32_buf (HASHSTEP(x,c) = ((x << 5) + x) + c). */
#define HASHINIT	5381
#define HASHSTEP(x, c)	(((x << 5) + x) + (c))
static inline uint32_t
hash32_buf(const void *buf, size_t len, uint32_t hash)
{
	const unsigned char *p = buf;

	while (len--)
		hash = HASHSTEP(hash, *p++);
	return (hash);
}

/* ---- vm/uma.h: zones of fixed-size items on libc. */
typedef struct uma_zone *uma_zone_t;
typedef int (*uma_ctor)(void *mem, int size, void *arg, int flags);
typedef void (*uma_dtor)(void *mem, int size, void *arg);
typedef int (*uma_init)(void *mem, int size, int flags);
typedef void (*uma_fini)(void *mem, int size);
typedef int (*uma_import)(void *arg, void **store, int count, int domain, int flags);
typedef void (*uma_release)(void *arg, void **store, int count);
#define UMA_ALIGN_PTR	(sizeof(void *) - 1)
#define UMA_ZONE_VM	0x0001
#define UMA_ZONE_NOFREE	0x0002
#define UMA_SLAB_KERNEL	0x04
#define UMA_SLAB_SPACE	4096

uma_zone_t uma_zcreate(const char *name, size_t size, uma_ctor ctor, uma_dtor dtor,
    uma_init uminit, uma_fini fini, int align, uint32_t flags);
uma_zone_t uma_zcache_create(char *name, int size, uma_ctor ctor, uma_dtor dtor,
    uma_init zinit, uma_fini zfini, uma_import zimport, uma_release zrelease,
    void *arg, int flags);
void *uma_zalloc(uma_zone_t zone, int flags);
void uma_zfree(uma_zone_t zone, void *item);
void uma_zdestroy(uma_zone_t zone);
void zone_drain(uma_zone_t zone);

#endif /* !_KMEMU_SHIM_H_ */
