/*
 * vmem-ref: runs a vmem script on FreeBSD's own subr_vmem.c (built in userland on the shim in
 * shim/) and prints one result line per operation. The script format is in README.md; kmemu's
 * `kmemu vmem run` follows the same format, so the two can be compared byte for byte.
 *
 * subr_vmem.c is included whole so that the driver can walk an arena's segment list and run
 * the DIAGNOSTIC consistency check after every operation.
 *
 * Exit status: 0 done; 2 a script error; 3 an operation this subr_vmem.c does not have;
 * 4 a panic (a KASSERT/MPASS failed, or a wait would block).
 */
#define DIAGNOSTIC 1
#include "subr_vmem.c"

#include <errno.h>
#include <stdarg.h>

#define MAX_ARENAS	64
#define MAX_ARGS	12

struct arena {
	char	name[64];
	vmem_t	*vm;
	vmem_t	*parent;
};

struct result {
	int		is_alloc;	/* the line was an alloc or an xalloc */
	int		failed;		/* ... that returned ENOMEM */
	vmem_addr_t	addr;
};

static struct arena arenas[MAX_ARENAS];
static struct result *results;
static size_t nresults;

static void __printflike(1, 2) __attribute__((__noreturn__))
script_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "vmem-ref: %d: ", kmemu_lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t
number(const char *s, const char *what)
{
	const char *digits = s;
	char *end;
	int base = 10;
	unsigned long long v;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		digits = s + 2;
	}
	if (*digits == '\0' || strspn(digits, base == 16 ? "0123456789abcdefABCDEF" : "0123456789") != strlen(digits))
		script_error("bad number for %s: \"%s\"", what, s);
	errno = 0;
	v = strtoull(digits, &end, base);
	if (errno == ERANGE || *end != '\0')
		script_error("bad number for %s: \"%s\" (more than 64 bits)", what, s);
	return ((uint64_t)v);
}

static struct arena *
find_arena(const char *name)
{
	int i;

	for (i = 0; i < MAX_ARENAS; i++)
		if (arenas[i].vm != NULL && strcmp(arenas[i].name, name) == 0)
			return (&arenas[i]);
	return (NULL);
}

static struct arena *
arena(const char *name)
{
	struct arena *a = find_arena(name);

	if (a == NULL)
		script_error("unknown arena \"%s\"", name);
	return (a);
}

static int
strategy(const char *s)
{
	if (strcmp(s, "bestfit") == 0)
		return (M_BESTFIT);
	if (strcmp(s, "firstfit") == 0)
		return (M_FIRSTFIT);
	if (strcmp(s, "nextfit") == 0) {
		fflush(stdout);
		fprintf(stderr, "vmem-ref: %d: nextfit is not in this subr_vmem.c\n", kmemu_lineno);
		exit(3);
	}
	script_error("bad strategy \"%s\" (bestfit, firstfit or nextfit)", s);
}

/* ADDR of a free: a number, or @L for what line L allocated; 0 when that allocation failed. */
static int
free_addr(const char *s, vmem_addr_t *addrp)
{
	uint64_t l;

	if (s[0] != '@') {
		*addrp = (vmem_addr_t)number(s, "ADDR");
		return (1);
	}
	l = number(s + 1, "@LINE");
	if (l == 0 || l >= (uint64_t)kmemu_lineno || !results[l].is_alloc)
		script_error("%s: line %ju is not an earlier alloc or xalloc", s, (uintmax_t)l);
	if (results[l].failed)
		return (0);
	*addrp = results[l].addr;
	return (1);
}

/* The import and release functions of a child arena: its parent's vmem_xalloc and vmem_xfree. */
static int
ref_import(void *arg, vmem_size_t size, int flags, vmem_addr_t *addrp)
{
	return (vmem_xalloc(arg, size, 0, 0, 0, VMEM_ADDR_MIN, VMEM_ADDR_MAX, flags, addrp));
}

static void
ref_release(void *arg, vmem_addr_t addr, vmem_size_t size)
{
	vmem_xfree(arg, addr, size);
}

struct seg {
	vmem_addr_t start;
	vmem_size_t size;
	int type;
	int index;
};

static int
is_span(int type)
{
	return (type == BT_TYPE_SPAN || type == BT_TYPE_SPAN_STATIC);
}

/* By address; at one address a span tag first; otherwise the list's order. */
static int
seg_cmp(const void *x, const void *y)
{
	const struct seg *a = x, *b = y;

	if (a->start != b->start)
		return (a->start < b->start ? -1 : 1);
	if (is_span(a->type) != is_span(b->type))
		return (is_span(a->type) ? -1 : 1);
	return (a->index - b->index);
}

static const char *
seg_type(int type)
{
	switch (type) {
	case BT_TYPE_SPAN:
		return ("span");
	case BT_TYPE_SPAN_STATIC:
		return ("static");
	case BT_TYPE_FREE:
		return ("free");
	case BT_TYPE_BUSY:
		return ("busy");
	}
	kmemu_panic("boundary tag of type %d", type);
}

static void
check_all(void)
{
	int i;

	for (i = 0; i < MAX_ARENAS; i++) {
		if (arenas[i].vm == NULL)
			continue;
		VMEM_LOCK(arenas[i].vm);
		vmem_check(arenas[i].vm);
		VMEM_UNLOCK(arenas[i].vm);
	}
}

static void
need(int argc, int min, int max, const char *usage)
{
	if (argc < min || argc > max)
		script_error("usage: %s", usage);
}

static void
run_line(char *line)
{
	char *argv[MAX_ARGS + 1];
	int argc = 0;
	char *tok, *save;
	const char *op;
	struct arena *a;
	vmem_addr_t addr;
	int error, i;

	/* A comment line is skipped whole, however many words it has. */
	line += strspn(line, " \t\r");
	if (line[0] == '#')
		return;
	for (tok = strtok_r(line, " \t\r", &save); tok != NULL; tok = strtok_r(NULL, " \t\r", &save)) {
		if (argc == MAX_ARGS)
			script_error("too many words");
		argv[argc++] = tok;
	}
	if (argc == 0 || argv[0][0] == '#')
		return;
	op = argv[0];

	if (strcmp(op, "create") == 0) {
		need(argc, 6, 6, "create NAME BASE SIZE QUANTUM QCACHE_MAX");
		uint64_t base = number(argv[2], "BASE"), size = number(argv[3], "SIZE");
		uint64_t quantum = number(argv[4], "QUANTUM"), qmax = number(argv[5], "QCACHE_MAX");
		if (find_arena(argv[1]) != NULL)
			script_error("arena \"%s\" exists", argv[1]);
		if (strlen(argv[1]) > VMEM_NAME_MAX)
			script_error("arena name \"%s\" is longer than %d", argv[1], VMEM_NAME_MAX);
		if (quantum == 0 || (quantum & (quantum - 1)) != 0)
			script_error("QUANTUM %ju is not a power of two", (uintmax_t)quantum);
		for (i = 0; i < MAX_ARENAS && arenas[i].vm != NULL; i++)
			;
		if (i == MAX_ARENAS)
			script_error("more than %d arenas", MAX_ARENAS);
		a = &arenas[i];
		a->vm = vmem_create(argv[1], base, size, quantum, qmax, M_WAITOK);
		if (a->vm == NULL) {
			printf("ENOMEM\n");
			return;
		}
		snprintf(a->name, sizeof(a->name), "%s", argv[1]);
		a->parent = NULL;
		printf("ok\n");
	} else if (strcmp(op, "import") == 0) {
		need(argc, 3, 4, "import CHILD PARENT [IMPORT_QUANTUM]");
		a = arena(argv[1]);
		struct arena *p = arena(argv[2]);
		vmem_size_t iq = argc == 4 ? number(argv[3], "IMPORT_QUANTUM") : a->vm->vm_quantum_mask + 1;
		if (p == a)
			script_error("arena \"%s\" cannot import from itself", argv[1]);
		vmem_set_import(a->vm, ref_import, ref_release, p->vm, iq);
		a->parent = p->vm;
		printf("ok\n");
	} else if (strcmp(op, "add") == 0) {
		need(argc, 4, 4, "add NAME BASE SIZE");
		a = arena(argv[1]);
		uint64_t base = number(argv[2], "BASE"), size = number(argv[3], "SIZE");
		error = vmem_add(a->vm, base, size, M_WAITOK);
		printf("%s\n", error == 0 ? "ok" : "ENOMEM");
	} else if (strcmp(op, "xalloc") == 0 || strcmp(op, "alloc") == 0) {
		int x = op[0] == 'x';
		if (x)
			need(argc, 9, 9, "xalloc NAME SIZE ALIGN PHASE NOCROSS MINADDR MAXADDR STRAT");
		else
			need(argc, 4, 4, "alloc NAME SIZE STRAT");
		a = arena(argv[1]);
		uint64_t size = number(argv[2], "SIZE");
		int strat = strategy(argv[x ? 8 : 3]);
		if (x) {
			uint64_t align = number(argv[3], "ALIGN"), phase = number(argv[4], "PHASE");
			uint64_t nocross = number(argv[5], "NOCROSS");
			uint64_t minaddr = number(argv[6], "MINADDR"), maxaddr = number(argv[7], "MAXADDR");
			error = vmem_xalloc(a->vm, size, align, phase, nocross,
			    minaddr == 0 ? VMEM_ADDR_MIN : minaddr, maxaddr == 0 ? VMEM_ADDR_MAX : maxaddr,
			    M_NOWAIT | strat, &addr);
		} else
			error = vmem_alloc(a->vm, size, M_NOWAIT | strat, &addr);
		results[kmemu_lineno].is_alloc = 1;
		results[kmemu_lineno].failed = error != 0;
		results[kmemu_lineno].addr = addr;
		if (error == 0)
			printf("0x%jx\n", (uintmax_t)addr);
		else if (error == ENOMEM)
			printf("ENOMEM\n");
		else
			printf("error %d\n", error);
	} else if (strcmp(op, "xfree") == 0 || strcmp(op, "free") == 0) {
		need(argc, 4, 4, op[0] == 'x' ? "xfree NAME ADDR SIZE" : "free NAME ADDR SIZE");
		a = arena(argv[1]);
		int have = free_addr(argv[2], &addr);
		uint64_t size = number(argv[3], "SIZE");
		if (!have) {
			printf("skip\n");
			return;
		}
		if (op[0] == 'x')
			vmem_xfree(a->vm, addr, size);
		else
			vmem_free(a->vm, addr, size);
		printf("ok\n");
	} else if (strcmp(op, "size") == 0) {
		need(argc, 2, 2, "size NAME");
		a = arena(argv[1]);
		printf("size %s alloc=0x%jx free=0x%jx total=0x%jx\n", a->name,
		    (uintmax_t)vmem_size(a->vm, VMEM_ALLOC), (uintmax_t)vmem_size(a->vm, VMEM_FREE),
		    (uintmax_t)vmem_size(a->vm, VMEM_ALLOC | VMEM_FREE));
	} else if (strcmp(op, "segs") == 0) {
		need(argc, 2, 2, "segs NAME");
		a = arena(argv[1]);
		const bt_t *bt;
		int n = 0, k;
		TAILQ_FOREACH(bt, &a->vm->vm_seglist, bt_seglist)
			n++;
		/*
		 * Address order, a span tag before the segments it starts with (the format's
		 * order; imported spans are appended to the list, not sorted into it).
		 */
		struct seg *segs = (calloc)(n ? n : 1, sizeof *segs);
		k = 0;
		TAILQ_FOREACH(bt, &a->vm->vm_seglist, bt_seglist) {
			segs[k].start = bt->bt_start;
			segs[k].size = bt->bt_size;
			segs[k].type = bt->bt_type;
			segs[k].index = k;
			k++;
		}
		qsort(segs, n, sizeof *segs, seg_cmp);
		printf("segs %s %d\n", a->name, n);
		for (k = 0; k < n; k++)
			printf("seg 0x%jx 0x%jx %s\n", (uintmax_t)segs[k].start,
			    (uintmax_t)segs[k].size, seg_type(segs[k].type));
		(free)(segs);
	} else if (strcmp(op, "destroy") == 0) {
		need(argc, 2, 2, "destroy NAME");
		a = arena(argv[1]);
		for (i = 0; i < MAX_ARENAS; i++)
			if (arenas[i].vm != NULL && arenas[i].parent == a->vm)
				script_error("arena \"%s\" imports from \"%s\": destroy it first",
				    arenas[i].name, a->name);
		vmem_destroy(a->vm);
		a->vm = NULL;
		printf("ok\n");
	} else
		script_error("unknown operation \"%s\"", op);
	check_all();
}

int
main(int argc, char **argv)
{
	FILE *f;
	char *text = NULL, *line, *next;
	size_t len = 0, cap = 0, n, lines = 1, i;

	if (argc != 2) {
		fprintf(stderr, "usage: vmem-ref SCRIPT (or - for stdin)\n");
		return (2);
	}
	f = strcmp(argv[1], "-") == 0 ? stdin : fopen(argv[1], "r");
	if (f == NULL) {
		fprintf(stderr, "vmem-ref: %s: %s\n", argv[1], strerror(errno));
		return (2);
	}
	for (;;) {
		if (cap - len < 65536) {
			cap = cap * 2 + 65536;
			text = realloc(text, cap + 1);
			if (text == NULL)
				kmemu_panic("out of memory reading the script");
		}
		n = fread(text + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	text[len] = '\0';
	for (i = 0; i < len; i++)
		lines += text[i] == '\n';
	nresults = lines + 1;
	results = calloc(nresults, sizeof(*results));
	if (results == NULL)
		kmemu_panic("out of memory");

	vmem_startup();
	kmemu_lineno = 0;
	for (line = text; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		kmemu_lineno++;
		if (next == NULL && *line == '\0')
			break;
		run_line(line);
	}
	if (fflush(stdout) != 0)
		return (1);
	return (0);
}
