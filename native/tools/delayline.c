/*
 * onionpunch-delayline: a user-space delay line between two TUN devices, for the NAT lab.
 *
 * This kernel has no sch_netem, so the lab delays packets itself: routes steer a link's packets into TUN
 * device A (or B); this program reads them, holds each one for delay +/- uniform jitter, and writes it to the
 * other TUN device, where the kernel receives it as if it had come from a link and forwards it on.
 *
 * One process serves both directions of one link (A->B and B->A, each with its own delay and jitter).
 * epoll waits on both TUN fds, a timerfd armed (absolute, CLOCK_MONOTONIC) for the earliest due packet, and a
 * signalfd (SIGTERM/SIGINT/SIGHUP end it cleanly). Packets wait in a bounded pool ordered by a binary min-heap
 * on release time; a full pool drops new packets (tail drop), so memory is bounded. --in-order keeps each
 * direction FIFO (release time never goes backwards, like a real link), otherwise jitter may reorder.
 *
 * The kernel decrements the TTL once when it forwards a packet into the TUN device and again when it forwards
 * it out after us; --ttl-fix adds one back so the delay line is invisible to traceroute and to TTL-limited
 * probes (the core router still counts as exactly one hop).
 *
 * Usage: onionpunch-delayline --tun-a NAME --tun-b NAME [--delay-ab MS] [--jitter-ab MS] [--delay-ba MS]
 *          [--jitter-ba MS] [--queue N] [--in-order] [--ttl-fix] [--realtime] [--parent-pid PID] [--seed N]
 * Prints "ready" on stdout once both devices are attached.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define SLOT_BYTES 2048

typedef struct {
  uint64_t release_ns;
  uint64_t seq;
  uint16_t len;
  uint8_t dir; /* 0: read from A, write to B; 1: read from B, write to A */
  uint8_t data[SLOT_BYTES];
} packet_t;

typedef struct {
  uint64_t delay_ns;
  uint64_t jitter_ns;
  uint64_t last_release_ns;
  uint64_t forwarded, dropped_full, dropped_write;
} direction_t;

static packet_t *pool;
static uint32_t *free_list, free_count;
static uint32_t *heap, heap_count;
static uint32_t capacity = 4096;
static uint64_t seq_counter;
static uint64_t rng_state;
static int in_order, ttl_fix, realtime;
static direction_t dirs[2];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

static int heap_less(uint32_t a, uint32_t b) {
  if (pool[a].release_ns != pool[b].release_ns) return pool[a].release_ns < pool[b].release_ns;
  return pool[a].seq < pool[b].seq;
}

static void heap_push(uint32_t idx) {
  uint32_t i = heap_count++;
  heap[i] = idx;
  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (!heap_less(heap[i], heap[p])) break;
    uint32_t t = heap[i]; heap[i] = heap[p]; heap[p] = t;
    i = p;
  }
}

static uint32_t heap_pop(void) {
  uint32_t top = heap[0];
  heap[0] = heap[--heap_count];
  uint32_t i = 0;
  for (;;) {
    uint32_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_count && heap_less(heap[l], heap[m])) m = l;
    if (r < heap_count && heap_less(heap[r], heap[m])) m = r;
    if (m == i) break;
    uint32_t t = heap[i]; heap[i] = heap[m]; heap[m] = t;
    i = m;
  }
  return top;
}

static void fix_ttl(uint8_t *p, uint16_t len) {
  if (len < 1) return;
  int version = p[0] >> 4;
  if (version == 4 && len >= 20) {
    unsigned ihl = (unsigned)(p[0] & 0x0f) * 4;
    if (ihl < 20 || ihl > len || p[8] == 255) return;
    p[8]++;
    p[10] = p[11] = 0;
    uint32_t sum = 0;
    for (unsigned i = 0; i < ihl; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    uint16_t c = (uint16_t)~sum;
    p[10] = (uint8_t)(c >> 8);
    p[11] = (uint8_t)(c & 0xff);
  } else if (version == 6 && len >= 40) {
    if (p[7] != 255) p[7]++;
  }
}

static int tun_attach(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { perror("open /dev/net/tun"); return -1; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (strlen(name) >= IFNAMSIZ) { fprintf(stderr, "delayline: tun name too long: %s\n", name); close(fd); return -1; }
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) { fprintf(stderr, "delayline: TUNSETIFF %s: %s\n", name, strerror(errno)); close(fd); return -1; }
  return fd;
}

static void arm_timer(int tfd) {
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  if (heap_count > 0) {
    uint64_t t = pool[heap[0]].release_ns;
    if (t == 0) t = 1;
    its.it_value.tv_sec = (time_t)(t / 1000000000ull);
    its.it_value.tv_nsec = (long)(t % 1000000000ull);
  }
  timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL); /* zero value disarms */
}

static void send_packet(int fd_out, packet_t *pk) {
  direction_t *d = &dirs[pk->dir];
  if (ttl_fix) fix_ttl(pk->data, pk->len);
  ssize_t w = write(fd_out, pk->data, pk->len);
  if (w == (ssize_t)pk->len) d->forwarded++;
  else d->dropped_write++;
}

static void on_readable(int fd_in, int fd_out, uint8_t dir) {
  direction_t *d = &dirs[dir];
  static uint8_t scratch[SLOT_BYTES];
  for (;;) {
    uint8_t *buf = scratch;
    uint32_t idx = UINT32_MAX;
    if (free_count > 0) { idx = free_list[free_count - 1]; buf = pool[idx].data; }
    ssize_t n = read(fd_in, buf, SLOT_BYTES);
    if (n <= 0) return; /* EAGAIN (drained) or error */
    if (idx == UINT32_MAX) { d->dropped_full++; continue; }
    if (d->delay_ns == 0 && d->jitter_ns == 0) { /* pass straight through */
      packet_t *pk = &pool[idx];
      pk->len = (uint16_t)n; pk->dir = dir;
      send_packet(fd_out, pk);
      continue;
    }
    free_count--;
    packet_t *pk = &pool[idx];
    pk->len = (uint16_t)n;
    pk->dir = dir;
    pk->seq = seq_counter++;
    uint64_t now = now_ns();
    int64_t offset = (int64_t)d->delay_ns;
    if (d->jitter_ns > 0) offset += (int64_t)(rng_next() % (2 * d->jitter_ns + 1)) - (int64_t)d->jitter_ns;
    if (offset < 0) offset = 0;
    uint64_t release = now + (uint64_t)offset;
    if (in_order && release < d->last_release_ns) release = d->last_release_ns;
    d->last_release_ns = release;
    pk->release_ns = release;
    heap_push(idx);
  }
}

static double arg_ms(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (*end != '\0' || v < 0 || v > 60000) { fprintf(stderr, "delayline: bad milliseconds: %s\n", s); exit(2); }
  return v;
}

int main(int argc, char **argv) {
  const char *tun_a = NULL, *tun_b = NULL;
  long parent_pid = 0;
  uint64_t seed = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--in-order")) { in_order = 1; continue; }
    if (!strcmp(a, "--ttl-fix")) { ttl_fix = 1; continue; }
    if (!strcmp(a, "--realtime")) { realtime = 1; continue; }
    if (v == NULL) { fprintf(stderr, "delayline: %s needs a value\n", a); return 2; }
    i++;
    if (!strcmp(a, "--tun-a")) tun_a = v;
    else if (!strcmp(a, "--tun-b")) tun_b = v;
    else if (!strcmp(a, "--delay-ab")) dirs[0].delay_ns = (uint64_t)(arg_ms(v) * 1e6);
    else if (!strcmp(a, "--jitter-ab")) dirs[0].jitter_ns = (uint64_t)(arg_ms(v) * 1e6);
    else if (!strcmp(a, "--delay-ba")) dirs[1].delay_ns = (uint64_t)(arg_ms(v) * 1e6);
    else if (!strcmp(a, "--jitter-ba")) dirs[1].jitter_ns = (uint64_t)(arg_ms(v) * 1e6);
    else if (!strcmp(a, "--queue")) capacity = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--parent-pid")) parent_pid = strtol(v, NULL, 10);
    else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
    else { fprintf(stderr, "delayline: unknown option %s\n", a); return 2; }
  }
  if (!tun_a || !tun_b) { fprintf(stderr, "delayline: --tun-a and --tun-b are required\n"); return 2; }
  if (capacity < 1 || capacity > 1000000) { fprintf(stderr, "delayline: bad --queue\n"); return 2; }
  rng_state = seed ? seed : 0x9E3779B97F4A7C15ull;

  if (parent_pid > 0) { /* die with the lab owner, so a SIGKILLed owner leaves no delay line behind */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != (pid_t)parent_pid) return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  if (realtime) {
    /* A busy machine must not add its scheduling latency to the configured delay: run as SCHED_FIFO (root).
     * The loop only sleeps in epoll_wait, so it cannot starve the machine. Failure is not fatal. */
    struct sched_param sp = {.sched_priority = 10};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) fprintf(stderr, "delayline: SCHED_FIFO unavailable: %s\n", strerror(errno));
  }

  pool = calloc(capacity, sizeof *pool);
  free_list = calloc(capacity, sizeof *free_list);
  heap = calloc(capacity, sizeof *heap);
  if (!pool || !free_list || !heap) { fprintf(stderr, "delayline: out of memory\n"); return 1; }
  for (uint32_t i = 0; i < capacity; i++) free_list[free_count++] = capacity - 1 - i;

  int fa = tun_attach(tun_a), fb = tun_attach(tun_b);
  if (fa < 0 || fb < 0) return 1;
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (tfd < 0 || sfd < 0 || ep < 0) { perror("delayline: setup"); return 1; }
  int fds[4] = {fa, fb, tfd, sfd};
  for (int i = 0; i < 4; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) { perror("delayline: epoll_ctl"); return 1; }
  }
  printf("ready\n");
  fflush(stdout);

  int running = 1;
  while (running) {
    struct epoll_event evs[8];
    int n = epoll_wait(ep, evs, 8, -1);
    if (n < 0) { if (errno == EINTR) continue; perror("delayline: epoll_wait"); break; }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == fa) on_readable(fa, fb, 0);
      else if (fd == fb) on_readable(fb, fa, 1);
      else if (fd == tfd) { uint64_t x; (void)!read(tfd, &x, sizeof x); }
      else if (fd == sfd) { struct signalfd_siginfo si; (void)!read(sfd, &si, sizeof si); running = 0; }
    }
    uint64_t now = now_ns();
    while (heap_count > 0 && pool[heap[0]].release_ns <= now + 20000) { /* 20 us early is on time */
      uint32_t idx = heap_pop();
      send_packet(pool[idx].dir == 0 ? fb : fa, &pool[idx]);
      free_list[free_count++] = idx;
    }
    arm_timer(tfd);
  }
  fprintf(stderr, "delayline: a->b forwarded %llu dropped(full %llu, write %llu); b->a forwarded %llu dropped(full %llu, write %llu)\n",
          (unsigned long long)dirs[0].forwarded, (unsigned long long)dirs[0].dropped_full, (unsigned long long)dirs[0].dropped_write,
          (unsigned long long)dirs[1].forwarded, (unsigned long long)dirs[1].dropped_full, (unsigned long long)dirs[1].dropped_write);
  close(fa); close(fb); close(tfd); close(sfd); close(ep);
  free(pool); free(free_list); free(heap);
  return 0;
}
