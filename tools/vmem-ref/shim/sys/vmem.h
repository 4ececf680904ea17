/* kmemu vmem reference shim for <sys/vmem.h>: the vmem(9) interface, written for kmemu. */
#ifndef _SYS_VMEM_H_
#define _SYS_VMEM_H_
#include "../kmemu_shim.h"

typedef struct vmem vmem_t;
typedef uintptr_t vmem_addr_t;
typedef size_t vmem_size_t;

#define VMEM_ADDR_MIN		0
#define VMEM_ADDR_QCACHE_MIN	1
#define VMEM_ADDR_MAX		(~(vmem_addr_t)0)

typedef int (vmem_import_t)(void *, vmem_size_t, int, vmem_addr_t *);
typedef void (vmem_release_t)(void *, vmem_addr_t, vmem_size_t);
typedef void (vmem_reclaim_t)(vmem_t *, int);

vmem_t *vmem_create(const char *name, vmem_addr_t base, vmem_size_t size,
    vmem_size_t quantum, vmem_size_t qcache_max, int flags);
vmem_t *vmem_init(vmem_t *vm, const char *name, vmem_addr_t base,
    vmem_size_t size, vmem_size_t quantum, vmem_size_t qcache_max, int flags);
void vmem_destroy(vmem_t *);
void vmem_set_import(vmem_t *vm, vmem_import_t *, vmem_release_t *, void *,
    vmem_size_t);
void vmem_set_limit(vmem_t *vm, vmem_size_t limit);
void vmem_set_reclaim(vmem_t *vm, vmem_reclaim_t *reclaimfn);
int vmem_alloc(vmem_t *vm, vmem_size_t size, int flags, vmem_addr_t *addrp);
int vmem_xalloc(vmem_t *vm, vmem_size_t size, vmem_size_t align,
    vmem_size_t phase, vmem_size_t nocross, vmem_addr_t minaddr,
    vmem_addr_t maxaddr, int flags, vmem_addr_t *addrp);
void vmem_free(vmem_t *vm, vmem_addr_t addr, vmem_size_t size);
void vmem_xfree(vmem_t *vm, vmem_addr_t addr, vmem_size_t size);
int vmem_add(vmem_t *vm, vmem_addr_t addr, vmem_size_t size, int flags);
vmem_size_t vmem_roundup_size(vmem_t *vm, vmem_size_t size);
vmem_size_t vmem_size(vmem_t *vm, int typemask);
void vmem_whatis(vmem_addr_t addr, int (*fn)(const char *, ...));
void vmem_print(vmem_addr_t addr, const char *, int (*fn)(const char *, ...));
void vmem_printall(const char *, int (*fn)(const char *, ...));
void vmem_startup(void);

#define VMEM_ALLOC	0x01
#define VMEM_FREE	0x02
#define VMEM_MAXFREE	0x10
#endif /* !_SYS_VMEM_H_ */
