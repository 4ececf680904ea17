/*
 * kmemu calibrate --host: the microbenchmarks of `kmemu calibrate`, natively on this machine.
 *
 * Built by tools/calibrate.ts with the system cc (-O2 -pthread) and run as
 *   kmemu-calib [--quick]
 * It prints one JSON object on stdout: the TSC-to-core-cycle ratio, each figure in core cycles
 * (the median of many timed runs) and the one-way handoff probes that tell where the hypervisor
 * placed the two vCPUs.
 *
 * Timing: rdtsc after lfence at the start, rdtscp then lfence at the end. The TSC ticks at its
 * own fixed rate, not the core's: a chain of dependent register adds (1 core cycle each) timed
 * with the TSC gives the ratio, measured before and after the figures. Every figure runs pinned:
 * the one-thread ones on CPU 0, the two-thread ones on CPUs 0 and 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LINE 64
#define PAGE 4096

static int quick;
static volatile uint64_t sink;

static inline uint64_t tsc_begin(void) {
  uint32_t lo, hi;
  __asm__ volatile("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi)::"memory");
  return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t tsc_end(void) {
  uint32_t lo, hi, aux;
  __asm__ volatile("rdtscp\n\tlfence" : "=a"(lo), "=d"(hi), "=c"(aux)::"memory");
  return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_pause(void) { __asm__ volatile("pause" ::: "memory"); }

static void die(const char *what) {
  fprintf(stderr, "kmemu-calib: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die(cpu == 0 ? "cannot pin to CPU 0" : "cannot pin to CPU 1");
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int runs(int n) { return quick ? (n + 4) / 5 | 1 : n; }

/* Core cycles per TSC tick: a chain of 200 dependent adds per iteration, 1 cycle each. */
static double cycles_per_tick(void) {
  enum { ITER = 20000, CHAIN = 200, RUNS = 21 };
  double r[RUNS];
  uint64_t x = 0, one = 1;
  for (int k = 0; k < RUNS; k++) {
    uint64_t t0 = tsc_begin();
    for (int i = 0; i < ITER; i++) __asm__ volatile(".rept 200\n\tadd %1, %0\n\t.endr" : "+r"(x) : "r"(one));
    uint64_t t1 = tsc_end();
    r[k] = (double)ITER * CHAIN / (double)(t1 - t0);
  }
  sink = x;
  return median(r, RUNS);
}

static double ratio; /* core cycles per TSC tick */

static void *alloc_huge(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  madvise(p, bytes, MADV_HUGEPAGE);
  memset(p, 1, bytes);
  return p;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Dependent pointer chase over `bytes` (one pointer per line, one random cycle): cycles/load. */
static double chase(size_t bytes, long loads, int nruns) {
  size_t n = bytes / LINE;
  char *buf = alloc_huge(bytes);
  size_t *order = malloc(n * sizeof *order);
  for (size_t i = 0; i < n; i++) order[i] = i;
  for (size_t i = n - 1; i > 0; i--) { /* Sattolo: one cycle through every line */
    size_t j = next_rand() % i;
    size_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (size_t i = 0; i < n; i++) *(void **)(buf + order[i] * LINE) = buf + order[(i + 1) % n] * LINE;
  free(order);
  void **p = (void **)buf;
  for (size_t i = 0; i < n + (size_t)loads; i++) p = (void **)*p;
  double r[64];
  for (int k = 0; k < nruns; k++) {
    uint64_t t0 = tsc_begin();
    for (long i = 0; i < loads; i += 8) {
      p = (void **)*p; p = (void **)*p; p = (void **)*p; p = (void **)*p;
      p = (void **)*p; p = (void **)*p; p = (void **)*p; p = (void **)*p;
    }
    uint64_t t1 = tsc_end();
    r[k] = (double)(t1 - t0) * ratio / (double)loads;
  }
  sink = (uint64_t)p;
  munmap(buf, bytes);
  return median(r, nruns);
}

/*
 * npages lines read in a fixed full-period order, each load's address depending on the value
 * the last one loaded (always 0): sparse, one line in each of npages pages, or dense, the same
 * number of lines packed in consecutive lines (npages / 64 pages). Both on 4 KiB pages, both
 * spread evenly over the cache sets so that they hit the same cache level: the difference is
 * what translating a new page per load costs. (Not 4 KiB against 2 MiB pages: in a VM whose
 * host backs guest memory with 4 KiB pages, a guest 2 MiB page takes 4 KiB TLB entries.)
 */
static inline size_t tlb_offset(size_t idx, int sparse) {
  return sparse ? idx * PAGE + ((idx + 17 * (idx >> 4)) & 63) * LINE : idx * LINE;
}

static double tlb_run(char *base, size_t npages, int sparse, long loads) {
  size_t mask = npages - 1, idx = 0;
  uint64_t v = 0;
  for (size_t i = 0; i < 2 * npages; i++) {
    idx = (idx * 5 + 1) & mask;
    v = *(volatile uint64_t *)(base + tlb_offset(idx, sparse) + v);
  }
  uint64_t t0 = tsc_begin();
  for (long i = 0; i < loads; i++) {
    idx = (idx * 5 + 1) & mask;
    v = *(volatile uint64_t *)(base + tlb_offset(idx, sparse) + v);
  }
  uint64_t t1 = tsc_end();
  sink = v;
  return (double)(t1 - t0) * ratio / (double)loads;
}

static double tlb_extra(size_t npages, long loads, int nruns) {
  size_t bytes = npages * PAGE;
  char *raw = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) die("mmap");
  madvise(raw, bytes, MADV_NOHUGEPAGE);
  memset(raw, 0, bytes);
  double d[64];
  tlb_run(raw, npages, 1, loads);
  tlb_run(raw, npages, 0, loads);
  /* Paired runs, the median of their differences: a noisy neighbour hits both sides alike. */
  for (int k = 0; k < nruns; k++) d[k] = tlb_run(raw, npages, 1, loads) - tlb_run(raw, npages, 0, loads);
  munmap(raw, bytes);
  return median(d, nruns);
}

/* A run of pause (or mfence) instructions: cycles per instruction. */
static double per_instruction(int fence) {
  enum { ITER = 2000 };
  double r[64];
  int n = runs(31);
  for (int k = 0; k < n + 1; k++) {
    uint64_t t0 = tsc_begin();
    if (fence)
      for (int i = 0; i < ITER; i++) __asm__ volatile("mfence" ::: "memory");
    else
      for (int i = 0; i < ITER; i++) __asm__ volatile("pause" ::: "memory");
    uint64_t t1 = tsc_end();
    if (k > 0) r[k - 1] = (double)(t1 - t0) * ratio / ITER;
  }
  return median(r, n);
}

static double atomic_uncontended(void) {
  enum { OPS = 100000 };
  static _Alignas(128) volatile uint64_t word;
  double r[64];
  int n = runs(31);
  for (int i = 0; i < OPS; i++) __atomic_fetch_add(&word, 1, __ATOMIC_SEQ_CST);
  for (int k = 0; k < n; k++) {
    uint64_t t0 = tsc_begin();
    for (int i = 0; i < OPS; i++) __atomic_fetch_add(&word, 1, __ATOMIC_SEQ_CST);
    uint64_t t1 = tsc_end();
    r[k] = (double)(t1 - t0) * ratio / OPS;
  }
  return median(r, n);
}

/* --- Two CPUs --------------------------------------------------------------------------- */

static _Alignas(128) volatile uint64_t flag;
static _Alignas(128) volatile uint64_t shared_word;
static _Alignas(128) volatile uint32_t lock_word;
static _Alignas(128) volatile uint32_t ready;
static _Alignas(128) volatile uint64_t stamps[2][2];

struct job {
  void (*fn)(int self, long arg);
  long arg;
};

static void *thread_main(void *p) {
  struct job *j = p;
  pin(1);
  j->fn(1, j->arg);
  return NULL;
}

/* Runs fn(0, arg) pinned on CPU 0 and fn(1, arg) pinned on CPU 1, to the end of both. */
static void on_two_cpus(void (*fn)(int, long), long arg) {
  struct job j = {fn, arg};
  pthread_t t;
  if (pthread_create(&t, NULL, thread_main, &j) != 0) die("pthread_create");
  fn(0, arg);
  pthread_join(t, NULL);
  pin(0);
}

static void start_together(int self) {
  __atomic_fetch_add(&ready, 1, __ATOMIC_SEQ_CST);
  while (ready < 2) cpu_pause();
  (void)self;
}

static int handoff_pause;
static double handoff_result[64];
static int handoff_runs;

/* CPU 0 writes an odd number, CPU 1 waits for it and writes the next even one, and so on. */
static void handoff_fn(int self, long rounds) {
  uint64_t seq = 0;
  for (int k = 0; k < handoff_runs + 1; k++) {
    uint64_t t0 = tsc_begin();
    for (long i = 0; i < rounds; i++) {
      uint64_t want = seq + 2;
      if (self == 0) {
        flag = seq + 1;
        if (handoff_pause) while (flag != want) cpu_pause();
        else while (flag != want);
      } else {
        if (handoff_pause) while (flag != seq + 1) cpu_pause();
        else while (flag != seq + 1);
        flag = want;
      }
      seq = want;
    }
    uint64_t t1 = tsc_end();
    if (self == 0 && k > 0) handoff_result[k - 1] = (double)(t1 - t0) * ratio / (2.0 * rounds);
  }
}

static double handoff(int with_pause, int nruns) {
  flag = 0;
  handoff_pause = with_pause;
  handoff_runs = nruns;
  on_two_cpus(handoff_fn, 2000);
  return median(handoff_result, nruns);
}

static double two_cpu_result[64];
static int two_cpu_run;

static void record(int self, uint64_t t0, uint64_t t1) {
  stamps[self][0] = t0;
  stamps[self][1] = t1;
}

/* Aggregate cycles per operation of the run both CPUs just did, `ops` each. */
static double aggregate(long ops) {
  uint64_t start = stamps[0][0] < stamps[1][0] ? stamps[0][0] : stamps[1][0];
  uint64_t end = stamps[0][1] > stamps[1][1] ? stamps[0][1] : stamps[1][1];
  return (double)(end - start) * ratio / (2.0 * ops);
}

static void contended_fn(int self, long ops) {
  start_together(self);
  uint64_t t0 = tsc_begin();
  for (long i = 0; i < ops; i++) __atomic_fetch_add(&shared_word, 1, __ATOMIC_SEQ_CST);
  record(self, t0, tsc_end());
}

/* As the kernel's spinlocks (and emu/spinlock.ts): try xchg; while held, spin reading with pause. */
static inline void spin_acquire(volatile uint32_t *l) {
  while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) != 0)
    while (*l != 0) cpu_pause();
}

static inline void spin_release(volatile uint32_t *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

static void ttas_fn(int self, long ops) {
  start_together(self);
  uint64_t t0 = tsc_begin();
  for (long i = 0; i < ops; i++) {
    spin_acquire(&lock_word);
    spin_release(&lock_word);
  }
  record(self, t0, tsc_end());
}

static double two_cpus(void (*fn)(int, long), long ops, int nruns) {
  for (int k = 0; k < nruns + 1; k++) {
    ready = 0;
    on_two_cpus(fn, ops);
    if (k > 0) two_cpu_result[k - 1] = aggregate(ops);
  }
  (void)two_cpu_run;
  return median(two_cpu_result, nruns);
}

static double ttas_1cpu(void) {
  enum { OPS = 100000 };
  double r[64];
  int n = runs(31);
  for (int k = 0; k < n + 1; k++) {
    uint64_t t0 = tsc_begin();
    for (int i = 0; i < OPS; i++) {
      spin_acquire(&lock_word);
      spin_release(&lock_word);
    }
    uint64_t t1 = tsc_end();
    if (k > 0) r[k - 1] = (double)(t1 - t0) * ratio / OPS;
  }
  return median(r, n);
}

/* --- Pages -------------------------------------------------------------------------------- */

static inline void rep_stosb(void *dst, size_t n) {
  __asm__ volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(0) : "memory");
}

static inline void rep_movsb(void *dst, const void *src, size_t n) {
  __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n)::"memory");
}

/* Zeroing (or copying) 4 KiB pages that are in no cache, as the kernel does: rep stosb (movsb). */
static double pages(int copy, size_t region, int nruns) {
  enum { BATCH = 256 };
  char *buf = alloc_huge(2 * region);
  size_t npages = region / PAGE, at = 0;
  double r[64];
  for (int k = 0; k < nruns; k++) {
    uint64_t t0 = tsc_begin();
    for (int i = 0; i < BATCH; i++, at = (at + 1) % npages) {
      if (copy) rep_movsb(buf + region + at * PAGE, buf + at * PAGE, PAGE);
      else rep_stosb(buf + at * PAGE, PAGE);
    }
    uint64_t t1 = tsc_end();
    r[k] = (double)(t1 - t0) * ratio / BATCH;
  }
  munmap(buf, 2 * region);
  return median(r, nruns);
}

/* --- Main ----------------------------------------------------------------------------------- */

static size_t cache_size(int name, size_t fallback) {
  long v = sysconf(name);
  return v > 0 ? (size_t)v : fallback;
}

static size_t clamp(size_t v, size_t lo, size_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static double ratio_min = 1e9, ratio_max = 0;

/* The ratio again, just before a figure: the core's clock moves (boost, other tenants). */
static double remeasure(void) {
  double r = cycles_per_tick();
  if (r < ratio_min) ratio_min = r;
  if (r > ratio_max) ratio_max = r;
  return r;
}

static double probes[16];
static int nprobes;

static void probe(void) {
  ratio = remeasure();
  probes[nprobes++] = handoff(0, runs(9));
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) quick = 1;
    else {
      fprintf(stderr, "usage: kmemu-calib [--quick]\n");
      return 2;
    }
  }
  pin(0);
  int two = sysconf(_SC_NPROCESSORS_ONLN) >= 2;
  if (two) { /* can we run on CPU 1 at all? */
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(1, &set);
    two = sched_setaffinity(0, sizeof set, &set) == 0;
    pin(0);
  }
  ratio = remeasure();
  size_t l1 = cache_size(_SC_LEVEL1_DCACHE_SIZE, 32 << 10);
  size_t l2 = cache_size(_SC_LEVEL2_CACHE_SIZE, 1 << 20);
  size_t l3 = cache_size(_SC_LEVEL3_CACHE_SIZE, 32 << 20);
  /* A VM's share of the L3 is smaller than cpuid says: measure the LLC just above the L2. */
  size_t dram_ws = clamp(8 * l3, (size_t)64 << 20, (size_t)256 << 20);
  int n = runs(15);
  if (two) probe();
  ratio = remeasure();
  double f_l1 = chase(l1 / 2, 100000, n);
  ratio = remeasure();
  double f_l2 = chase(clamp(l2 / 2, 2 * l1, l2), 100000, n);
  ratio = remeasure();
  double f_llc = chase(clamp(2 * l2, 2 * l2, l3 / 2), 50000, n);
  ratio = remeasure();
  double f_dram = chase(dram_ws, quick ? 5000 : 20000, n);
  ratio = cycles_per_tick();
  double f_tlb_l2 = tlb_extra(2048, 100000, n);
  double f_tlb_walk = tlb_extra(8192, 100000, n);
  ratio = remeasure();
  double f_pause = per_instruction(0);
  double f_mfence = per_instruction(1);
  ratio = remeasure();
  double f_atomic = atomic_uncontended();
  ratio = remeasure();
  double f_ttas1 = ttas_1cpu();
  ratio = remeasure();
  double f_zero = pages(0, dram_ws / 2, runs(31));
  ratio = remeasure();
  double f_copy = pages(1, dram_ws / 4, runs(31));
  double f_hand = 0, f_hand_pause = 0, f_cont = 0, f_ttas2 = 0;
  if (two) {
    probe();
    ratio = remeasure();
    f_hand = handoff(0, runs(31));
    f_hand_pause = handoff(1, runs(31));
    probe();
    ratio = remeasure();
    f_cont = two_cpus(contended_fn, 100000, runs(15));
    f_ttas2 = two_cpus(ttas_fn, 100000, runs(15));
    probe();
  }
  printf("{\"cyclesPerTick\":{\"min\":%.4f,\"max\":%.4f},", ratio_min, ratio_max);
  printf("\"sizes\":{\"l1d\":%zu,\"l2\":%zu,\"l3\":%zu},", l1, l2, l3);
  printf("\"results\":{");
  printf("\"load.l1\":%.2f,\"load.l2\":%.2f,\"load.llc\":%.2f,\"load.dram\":%.2f,", f_l1, f_l2, f_llc, f_dram);
  printf("\"tlb.l2hit\":%.2f,\"tlb.walk\":%.2f,", f_tlb_l2, f_tlb_walk);
  printf("\"atomic.uncontended\":%.2f,\"pause\":%.2f,\"mfence\":%.2f,", f_atomic, f_pause, f_mfence);
  if (two) {
    printf("\"handoff.oneway\":%.2f,\"handoff.oneway.pause\":%.2f,", f_hand, f_hand_pause);
    printf("\"atomic.contended2\":%.2f,\"ttas.2cpu\":%.2f,", f_cont, f_ttas2);
  }
  printf("\"ttas.1cpu\":%.2f,\"page.zero\":%.2f,\"page.copy\":%.2f},", f_ttas1, f_zero, f_copy);
  printf("\"handoffProbes\":[");
  for (int i = 0; i < nprobes; i++) printf("%s%.2f", i ? "," : "", probes[i]);
  printf("]}\n");
  return 0;
}
