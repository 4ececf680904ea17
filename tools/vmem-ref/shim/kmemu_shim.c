/*
 * kmemu vmem reference: the runtime half of the shim (panic, malloc(9), UMA), written for kmemu.
 * Single-threaded; nothing here can sleep.
 */
#include <stdarg.h>
#include "kmemu_shim.h"

int kmemu_lineno;
int hz = 1000;
struct taskqueue *taskqueue_thread;

void
kmemu_panic(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "vmem-ref: %d: panic: ", kmemu_lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(4);
}

void *
kmemu_kmalloc(size_t size, struct malloc_type *type, int flags)
{
	void *p;

	(void)type;
	p = (flags & M_ZERO) != 0 ? calloc(1, size) : (malloc)(size);
	if (p == NULL && (flags & M_WAITOK) != 0)
		kmemu_panic("malloc(%zu, M_WAITOK): out of memory", size);
	return (p);
}

void
kmemu_kfree(void *addr, struct malloc_type *type)
{
	(void)type;
	(free)(addr);
}

/*
 * A zone is either of fixed-size items from libc (uma_zcreate), or a cache zone whose items come
 * from import and go back through release one at a time (uma_zcache_create): it keeps nothing
 * cached, so a vmem quantum cache on it is vmem_xalloc/vmem_xfree from VMEM_ADDR_QCACHE_MIN up.
 */
struct uma_zone {
	const char	*uz_name;
	size_t		uz_size;
	uma_import	uz_import;
	uma_release	uz_release;
	void		*uz_arg;
	long		uz_items;	/* live items */
};

uma_zone_t
uma_zcreate(const char *name, size_t size, uma_ctor ctor, uma_dtor dtor,
    uma_init uminit, uma_fini fini, int align, uint32_t flags)
{
	uma_zone_t z;

	(void)align; (void)flags;
	KASSERT(ctor == NULL && dtor == NULL && uminit == NULL && fini == NULL,
	    ("uma_zcreate %s: item hooks are not in the shim", name));
	z = calloc(1, sizeof(*z));
	if (z == NULL)
		kmemu_panic("uma_zcreate %s: out of memory", name);
	z->uz_name = name;
	z->uz_size = size;
	return (z);
}

uma_zone_t
uma_zcache_create(char *name, int size, uma_ctor ctor, uma_dtor dtor,
    uma_init zinit, uma_fini zfini, uma_import zimport, uma_release zrelease,
    void *arg, int flags)
{
	uma_zone_t z;

	KASSERT(zimport != NULL && zrelease != NULL, ("uma_zcache_create %s: no import", name));
	z = uma_zcreate(name, (size_t)size, ctor, dtor, zinit, zfini, 0, (uint32_t)flags);
	z->uz_import = zimport;
	z->uz_release = zrelease;
	z->uz_arg = arg;
	return (z);
}

void *
uma_zalloc(uma_zone_t z, int flags)
{
	void *item;

	if (z->uz_import != NULL) {
		if (z->uz_import(z->uz_arg, &item, 1, 0, flags) != 1)
			return (NULL);
	} else {
		item = calloc(1, z->uz_size);
		if (item == NULL) {
			if ((flags & M_WAITOK) != 0)
				kmemu_panic("uma_zalloc %s: out of memory", z->uz_name);
			return (NULL);
		}
	}
	z->uz_items++;
	return (item);
}

void
uma_zfree(uma_zone_t z, void *item)
{
	if (item == NULL)
		return;
	z->uz_items--;
	if (z->uz_release != NULL)
		z->uz_release(z->uz_arg, &item, 1);
	else
		(free)(item);
}

void
uma_zdestroy(uma_zone_t z)
{
	/* A cache zone's count is not kept exact: vmem_free() hands it what vmem_xalloc() gave. */
	KASSERT(z->uz_import != NULL || z->uz_items == 0,
	    ("uma_zdestroy %s: %ld items live", z->uz_name, z->uz_items));
	(free)(z);
}

void
zone_drain(uma_zone_t z)
{
	(void)z;	/* nothing is cached */
}
