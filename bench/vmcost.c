/*
 * vmcost: what the memory operations the takeover is made of cost on this
 * machine, as the minimum over many repetitions (robust to a busy machine).
 * The restorer's choices follow from these numbers (docs/benchmarks.md):
 * populate instead of faulting, merge or avoid small munmaps.
 *
 *   cc -O2 -o /tmp/vmcost bench/vmcost.c && /tmp/vmcost [FILE]
 *
 * FILE (default: libc) is mapped read-only for the file-backed cases.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define REPEAT 300

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static double min_of(double a, double b) { return a < b ? a : b; }

/* anonymous memory: first-touch write faults vs one MADV_POPULATE_WRITE, and unmapping it */
static void anon(int pages)
{
	double fault = 1e9, populate = 1e9, unmap = 1e9;
	for (int i = 0; i < REPEAT; i++) {
		char *p = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		double t0 = now_us();
		for (int k = 0; k < pages; k++)
			p[k * PAGE] = 1;
		double t1 = now_us();
		munmap(p, pages * PAGE);
		double t2 = now_us();
		fault = min_of(fault, t1 - t0);
		unmap = min_of(unmap, t2 - t1);
		p = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		t0 = now_us();
		madvise(p, pages * PAGE, 23 /* MADV_POPULATE_WRITE */);
		populate = min_of(populate, now_us() - t0);
		munmap(p, pages * PAGE);
	}
	printf("anon %4d pages: write faults %7.1f us (%.2f/page), MADV_POPULATE_WRITE %6.1f us (%.2f/page), munmap touched %6.1f us\n", pages,
	       fault, fault / pages, populate, populate / pages, unmap);
}

/* the first user access to pages MADV_POPULATE_WRITE mapped, and the second: what a
 * restored main pays for each page of the snapshot it touches. On bare metal or under a
 * hypervisor with nested paging both are cheap; one that shadows the guest's page tables
 * fills its own entry on the first access (docs/benchmarks.md, "The init level"). */
static void first_touch(int pages)
{
	double first = 1e9, second = 1e9;
	for (int i = 0; i < REPEAT / 10; i++) {
		char *p = mmap(0, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		madvise(p, pages * PAGE, 23 /* MADV_POPULATE_WRITE */);
		double t0 = now_us();
		for (int k = 0; k < pages; k++)
			((volatile char *)p)[k * PAGE]++;
		double t1 = now_us();
		for (int k = 0; k < pages; k++)
			((volatile char *)p)[k * PAGE]++;
		double t2 = now_us();
		first = min_of(first, t1 - t0);
		second = min_of(second, t2 - t1);
		munmap(p, pages * PAGE);
	}
	printf("anon %4d pages populated: first touch %7.1f us (%.2f/page), second touch %6.1f us (%.3f/page)\n", pages, first,
	       first / pages, second, second / pages);
}

/* a private read-only file mapping: read faults (with fault-around) vs MAP_POPULATE, and unmapping */
static void file(int fd, int pages)
{
	double fault = 1e9, populate = 1e9, unmap_full = 1e9, unmap_empty = 1e9;
	for (int i = 0; i < REPEAT; i++) {
		double t0 = now_us();
		char *p = mmap(0, pages * PAGE, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		double t1 = now_us();
		munmap(p, pages * PAGE);
		double t2 = now_us();
		populate = min_of(populate, t1 - t0);
		unmap_full = min_of(unmap_full, t2 - t1);
		volatile char *q = mmap(0, pages * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		t0 = now_us();
		for (int k = 0; k < pages; k++)
			(void)q[k * PAGE];
		fault = min_of(fault, now_us() - t0);
		munmap((void *)q, pages * PAGE);
		q = mmap(0, pages * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		t0 = now_us();
		munmap((void *)q, pages * PAGE);
		unmap_empty = min_of(unmap_empty, now_us() - t0);
	}
	printf("file %4d pages: read faults %7.1f us, mmap+MAP_POPULATE %6.1f us, munmap populated %6.1f us, munmap untouched %4.1f us\n", pages,
	       fault, populate, unmap_full, unmap_empty);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/usr/lib/x86_64-linux-gnu/libc.so.6";
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	double sys = 1e9;
	for (int i = 0; i < 2000; i++) {
		double t0 = now_us();
		getppid();
		sys = min_of(sys, now_us() - t0);
	}
	printf("system call (getppid): %.2f us\n", sys);
	static const int sizes[] = {1, 6, 16, 64, 256};
	for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		anon(sizes[i]);
	for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		file(fd, sizes[i]);
	first_touch(256);
	first_touch(3000);
	return 0;
}
