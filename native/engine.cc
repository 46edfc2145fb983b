#include "engine.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <queue>
#include <random>
#include <unordered_map>
#include <unordered_set>

namespace onionpunch {

namespace {

constexpr uint64_t kEventTok = 1;  // epoll tokens below kFirstSerial are the engine's own fds
constexpr uint64_t kTimerTok = 2;
constexpr uint64_t kFirstSerial = 16;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

EventKind failure_kind(int err) {
  switch (err) {
    case ECONNREFUSED:
    case ECONNRESET:
      return EventKind::Rst;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EPROTO:
    case ENOPROTOOPT:
      return EventKind::Icmp;  // what an ICMP error (unreachable, time exceeded) turns into in SYN_SENT
    case ETIMEDOUT:
      return EventKind::Timeout;
    default:
      return EventKind::Error;
  }
}

enum class TimerKind : uint8_t { Wave, Fire, Resyn, Deadline, Stagger, Stall, Settle, AckProbe };

struct Timer {
  int64_t at;
  uint64_t plan;
  uint32_t arg;  // wave index or remote index
  uint32_t gen;
  TimerKind kind;
  bool operator>(const Timer& o) const { return at > o.at; }
};

struct Attempt {
  Fd fd;
  Fd pre;                // bound ahead of its SYN (during the spin), so connect() is all that is left
  bool pre_prime = false;
  uint64_t serial = 0;
  bool prime = false;
  bool out = false;      // taken out of the race (failure with retries off)
  int64_t base_ns = 0;   // grid origin for re-SYNs
  uint32_t gen = 0;      // bumps when a wave supersedes the attempt: stale timers are ignored
  uint32_t sends = 0;    // full SYN sockets opened: a Stall or AckProbe timer names the one it watches
  uint32_t stalls = 0;   // stall re-sends since the wave began (the interval doubles with each)
  int64_t sent_ns = 0;   // when the current socket's SYN left (a nudge leaves a younger socket alone)
  uint32_t probes = 0;   // ACK probes sent from the current socket (kMaxAckProbes: no more)
  bool recv_seen = false;  // the last AckProbe check found it in SYN_RECV already
  bool reported = false;   // this socket's stall was reported to the peer (which may nudge): no ACK probes
  int64_t probed_ns = 0; // when the last one left
  int last_err = 0;
  bool est = false;      // spray follower: established and kept (watched for data, FIN or RST)
  int64_t est_ns = 0;
};

struct Plan {
  uint64_t id = 0;
  // Set by finish(): the plan has its outcome and no sockets, but stays in the plan table (so every Plan&
  // and timer that still names it stays valid) until reap() at the end of the loop iteration.
  bool finished = false;
  PlanSpec spec;
  std::vector<Attempt> att;
  std::unique_ptr<Outcome> out;
  Fd hold;  // port-0 plans: the socket that reserved the port, used by the first attempt
  bool auto_port = false;  // the port came from the allocator and goes back to it at the end
  // Spray follower (spec.settle_ns > 0): collecting since the first establishment, at first_est_ns.
  bool collecting = false;
  int64_t first_est_ns = 0;
  int64_t settle_ns = 0;     // the quiet period in force: max(spec.settle_ns, 2 x RTT), at most 4 x spec
  uint32_t settle_gen = 0;   // bumps with every establishment or death: older Settle timers are stale
  uint32_t nudges = 0;       // nudge() re-sends so far (at most kMaxNudges)
};

/**
 * Local ports for port-0 plans. bind(port 0) gets slow (a linear search) once thousands of ports are
 * bound, so the engine walks the ephemeral range itself, skips ports its own plans hold (SO_REUSEPORT
 * would let it bind them twice) and lets the kernel refuse ports others use (EADDRINUSE).
 */
class PortAllocator {
 public:
  PortAllocator() {
    FILE* f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
      unsigned a = 0, b = 0;
      if (fscanf(f, "%u %u", &a, &b) == 2 && a > 0 && b >= a && b <= 65535) {
        lo_ = a;
        hi_ = b;
      }
      fclose(f);
    }
    std::random_device rd;
    cursor_ = lo_ + rd() % (hi_ - lo_ + 1);
  }

  Fd take(const SockAddr& local, const SocketOptions& opt, SysError* err) {
    SockAddr a = local;
    unsigned span = hi_ - lo_ + 1;
    for (unsigned tries = 0; tries < span && tries < 4096; tries++) {
      uint16_t port = static_cast<uint16_t>(cursor_);
      cursor_ = cursor_ >= hi_ ? lo_ : cursor_ + 1;
      if (used_.count(port)) continue;
      a.set_port(port);
      Fd fd = open_bound_socket(a, opt, err);
      if (fd) {
        used_.insert(port);
        return fd;
      }
      if (err->err != EADDRINUSE) return Fd();
    }
    a.set_port(0);  // range crowded: let the kernel search
    Fd fd = open_bound_socket(a, opt, err);
    SockAddr name;
    if (fd && !local_name(fd.get(), &name)) used_.insert(name.port());
    return fd;
  }

  void give_back(uint16_t port) { used_.erase(port); }

 private:
  unsigned lo_ = 32768, hi_ = 60999, cursor_ = 32768;
  std::unordered_set<uint16_t> used_;
};

}  // namespace

struct Engine::Impl {
  Engine* owner = nullptr;
  Fd ep, tfd, efd;
  int64_t armed_at = -1;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> heap;
  std::unordered_map<uint64_t, std::unique_ptr<Plan>> plans;
  struct Ref {
    Plan* plan;
    uint32_t remote;
  };
  std::unordered_map<uint64_t, Ref> by_serial;
  uint64_t next_serial = kFirstSerial;
  std::vector<std::unique_ptr<Outcome>> pending;
  std::vector<StallReport> stall_reports;  // handed over with the outcomes at the end of the iteration
  std::vector<uint64_t> finished;  // plans to reap at the end of this iteration
  // Sockets of plans finished in this iteration, closed after their outcomes are handed over: a spray's
  // leader ends with ~2,000 of them (~10 us each), and the outcome should not wait for that.
  std::vector<Fd> closing;
  PortAllocator ports;
  bool stopping = false;
  // Set when epoll_wait failed: every plan still in flight, and every plan submitted after, ends LoopFailed.
  SysError loop_error;
  // Adaptive spin: timerfd wakeups on a busy VM can be late by a millisecond; we learn how late.
  int64_t spin_ns = 500'000;
  int64_t fixed_spin_ns = 0;
  double late_est_ns = 0;

  void observe_wakeup(int64_t late) {
    if (fixed_spin_ns > 0) return;
    late_est_ns = std::max(late_est_ns * 0.995, static_cast<double>(std::max<int64_t>(late, 0)));
    int64_t want = static_cast<int64_t>(late_est_ns * 1.5) + 50'000;
    spin_ns = std::min(std::max(want, Engine::kMinSpinNs), Engine::kMaxSpinNs);
  }

  std::atomic<uint64_t> st_plans{0}, st_sockets{0}, st_max_sockets{0}, st_syns{0}, st_done{0};

  void record(Plan& p, EventKind k, int remote, int err, int64_t target, int64_t actual) {
    p.out->timeline.push_back(TimelineEvent{k, static_cast<int16_t>(remote), err, target, actual});
  }

  void arm(int64_t at) {
    if (at == armed_at) return;
    itimerspec its{};
    if (at <= 0) at = 1;
    its.it_value.tv_sec = at / 1'000'000'000LL;
    its.it_value.tv_nsec = at % 1'000'000'000LL;
    timerfd_settime(tfd.get(), TFD_TIMER_ABSTIME, &its, nullptr);
    armed_at = at;
  }

  void push_timer(int64_t at, uint64_t plan, uint32_t arg, uint32_t gen, TimerKind k) {
    heap.push(Timer{at, plan, arg, gen, k});
  }

  void close_attempt(Attempt& a) {
    if (!a.fd) return;
    by_serial.erase(a.serial);
    a.serial = 0;
    a.fd.reset();  // the only reference to the file, so this also leaves the epoll set
    st_sockets.fetch_sub(1, std::memory_order_relaxed);
  }

  /**
   * As close_attempt, but the descriptor is closed by close_deferred() at the end of this loop iteration. Until
   * then it stays in the epoll set, which is not waited on again before that.
   */
  void defer_close(Attempt& a) {
    if (!a.fd) return;
    by_serial.erase(a.serial);
    a.serial = 0;
    closing.push_back(std::move(a.fd));
    st_sockets.fetch_sub(1, std::memory_order_relaxed);
  }

  void close_deferred() { closing.clear(); }

  /**
   * Ends a plan: closes its sockets, queues its outcome and marks it finished. The Plan itself lives on until
   * reap() at the end of the loop iteration, so callers up the stack may still read it (they check
   * `finished`, or the false/return their callee gave them). A second finish() is a no-op.
   */
  void finish(Plan& p, Status st, int err, Syscall syscall) {
    if (p.finished) return;
    p.finished = true;
    for (auto& a : p.att) {
      if (p.spec.reset_losers && a.fd) {
        // RST, not FIN: the follower learns at once that this connection is not the one (and a socket in
        // SYN_SENT sends nothing either way).
        linger lg{1, 0};
        setsockopt(a.fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      }
      defer_close(a);
      a.pre.reset();
    }
    p.hold.reset();
    p.out->status = st;
    p.out->err = err;
    p.out->syscall = syscall;
    pending.push_back(std::move(p.out));
    if (p.auto_port) ports.give_back(p.spec.local.port());
    finished.push_back(p.id);
    st_plans.fetch_sub(1, std::memory_order_relaxed);
    st_done.fetch_add(1, std::memory_order_relaxed);
  }

  /** Destroys the plans finished during this iteration (libuv's closing handles: freed after the callbacks). */
  void reap() {
    for (uint64_t id : finished) plans.erase(id);
    finished.clear();
  }

  /** Ends every plan still in flight with `st`. */
  void finish_all(Status st, int err, Syscall syscall) {
    for (auto& kv : plans) finish(*kv.second, st, err, syscall);
  }

  void add_plan(uint64_t id, PlanSpec&& spec) {
    auto p = std::make_unique<Plan>();
    p->id = id;
    p->spec = std::move(spec);
    p->out = std::make_unique<Outcome>();
    p->out->plan_id = id;
    p->out->started_ns = p->spec.start_ns;
    p->att.resize(p->spec.remotes.size());
    if (p->spec.waves_ns.empty()) p->spec.waves_ns.push_back(0);
    std::sort(p->spec.waves_ns.begin(), p->spec.waves_ns.end());
    Plan& plan = *p;
    plans.emplace(id, std::move(p));
    st_plans.fetch_add(1, std::memory_order_relaxed);
    if (loop_error) return finish(plan, Status::LoopFailed, loop_error.err, loop_error.syscall);
    if (stopping) return finish(plan, Status::Stopped, 0, Syscall::None);
    bool bad_family = plan.spec.remotes.empty();
    for (auto& r : plan.spec.remotes) bad_family = bad_family || r.family() != plan.spec.local.family();
    if (bad_family) return finish(plan, Status::SocketError, EAFNOSUPPORT, Syscall::Connect);
    if (plan.spec.remotes.size() > kMaxAttempts) return finish(plan, Status::SocketError, E2BIG, Syscall::None);
    if (plan.spec.port_mode == PortMode::Distinct) {
      // Every attempt gets its own port at connect(): nothing to reserve, and a fixed port would be shared.
      if (plan.spec.local.port() != 0) return finish(plan, Status::BindError, EINVAL, Syscall::Bind);
    } else if (plan.spec.local.port() == 0) {
      // Choose the port once so that every attempt of the plan (and every wave) leaves from it. The socket
      // stays bound until the first SYN uses it: a bound port is never handed to another bind(0) meanwhile.
      SocketOptions o;
      o.syn_cnt = plan.spec.syn_cnt;
      o.no_delay = false;  // set on the winner only: one syscall less per attempt
      SysError e;
      Fd hold = ports.take(plan.spec.local, o, &e);
      if (e) {
        return finish(plan, e.syscall == Syscall::Bind ? Status::BindError : Status::SocketError, e.err, e.syscall);
      }
      SockAddr name;
      e = local_name(hold.get(), &name);
      if (e) return finish(plan, Status::SocketError, e.err, e.syscall);
      plan.spec.local.set_port(name.port());
      plan.auto_port = true;
      plan.hold = std::move(hold);
    }
    push_timer(plan.spec.start_ns + plan.spec.waves_ns[0], id, 0, 0, TimerKind::Wave);
    push_timer(plan.spec.deadline_ns, id, 0, 0, TimerKind::Deadline);
  }

  /** Opens one attempt socket and sends its SYN. Returns false when the plan ended meanwhile. */
  bool open_attempt(Plan& p, uint32_t r, bool prime, int64_t target) {
    Attempt& a = p.att[r];
    close_attempt(a);
    SocketOptions o;
    o.syn_cnt = p.spec.syn_cnt;
    o.no_delay = false;
    o.ttl = prime ? p.spec.prime_ttl : p.spec.first_syn_ttl;
    SysError e;
    Fd fd;
    if (a.pre && a.pre_prime == prime) {
      fd = std::move(a.pre);
    } else if (p.hold) {
      fd = std::move(p.hold);
      if (o.ttl > 0) {
        int te = set_ttl(fd.get(), p.spec.local.family(), o.ttl);
        if (te != 0) e = {te, Syscall::Setsockopt};
      }
    } else {
      fd = open_socket(p, o, &e);
    }
    if (e) {
      if (e.syscall == Syscall::Bind && (e.err == EADDRINUSE || e.err == EACCES || e.err == EADDRNOTAVAIL)) {
        finish(p, Status::BindError, e.err, e.syscall);
        return false;
      }
      int64_t now = monotonic_ns();
      record(p, EventKind::Error, static_cast<int>(r), e.err, target, now);
      if (prime) return true;
      return on_failure(p, r, e.err, e.syscall, now, Status::SocketError);
    }
    const SockAddr& remote = p.spec.remotes[r];
    int64_t actual = monotonic_ns();
    int ce = start_connect(fd.get(), remote);
    a.sent_ns = actual;
    st_syns.fetch_add(1, std::memory_order_relaxed);
    p.out->attempts++;
    record(p, prime ? EventKind::Prime : EventKind::Syn, static_cast<int>(r), 0, target, actual);
    if (ce != 0) {
      int64_t now = monotonic_ns();
      record(p, failure_kind(ce), static_cast<int>(r), ce, -1, now);
      if (prime) return true;
      return on_failure(p, r, ce, Syscall::Connect, now, Status::Unreachable);
    }
    // Only the first SYN goes out with the low TTL: the kernel's retransmissions use the default again.
    if (!prime && p.spec.first_syn_ttl > 0) set_ttl(fd.get(), remote.family(), -1);
    // A local peer answers within connect() (the RST is processed when connect releases the socket):
    // one getsockopt here spares the epoll registration and a loop round for it.
    int early = socket_error(fd.get());
    if (early != 0) {
      int64_t now = monotonic_ns();
      record(p, failure_kind(early), static_cast<int>(r), early, -1, now);
      if (prime) return true;
      return on_failure(p, r, early, Syscall::Connect, now, Status::Unreachable);
    }
    uint64_t serial = next_serial++;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLERR | EPOLLHUP;
    ev.data.u64 = serial;
    if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
      int err = errno;
      int64_t now = monotonic_ns();
      record(p, EventKind::Error, static_cast<int>(r), err, -1, now);
      return on_failure(p, r, err, Syscall::EpollCtl, now, Status::SocketError);
    }
    a.fd = std::move(fd);
    a.serial = serial;
    a.prime = prime;
    by_serial.emplace(serial, Ref{&p, r});
    uint64_t n = st_sockets.fetch_add(1, std::memory_order_relaxed) + 1;
    if (n > st_max_sockets.load(std::memory_order_relaxed)) st_max_sockets.store(n, std::memory_order_relaxed);
    if (!prime) {
      a.sends++;
      a.probes = 0;
      a.recv_seen = false;
      a.reported = false;
      int64_t at = actual + p.spec.ack_probe_ns;
      if (p.spec.ack_probe_ns > 0 && at < p.spec.deadline_ns) push_timer(at, p.id, r, a.sends, TimerKind::AckProbe);
    }
    if (!prime && p.spec.stall_ns > 0) {
      int64_t wait = p.spec.stall_ns;
      for (uint32_t i = 0; i < a.stalls && wait < kMaxStallNs; i++) wait *= 2;
      int64_t at = actual + std::min(wait, std::max(kMaxStallNs, p.spec.stall_ns));
      if (at < p.spec.deadline_ns) push_timer(at, p.id, r, a.sends, TimerKind::Stall);
    }
    return true;
  }

  /** The socket of one attempt, as the plan's port mode wants it. */
  Fd open_socket(const Plan& p, const SocketOptions& o, SysError* e) {
    if (p.spec.port_mode == PortMode::Distinct) return open_ephemeral_socket(p.spec.local, o, e);
    return open_bound_socket(p.spec.local, o, e);
  }

  /** An attempt's first SYN of a wave (prime or full) and, for prime, its fire timer. False if the plan ended. */
  bool start_attempt(Plan& p, uint32_t r, int64_t at) {
    bool prime = p.spec.profile == Profile::Prime;
    uint64_t id = p.id;
    if (!open_attempt(p, r, prime, at) || p.finished) return false;
    if (prime && at + p.spec.prime_delay_ns < p.spec.deadline_ns)
      push_timer(at + p.spec.prime_delay_ns, id, r, p.att[r].gen, TimerKind::Fire);
    return true;
  }

  /** A non-prime attempt failed: schedule its re-SYN, or take it out. Returns false if the plan ended. */
  bool on_failure(Plan& p, uint32_t r, int err, Syscall syscall, int64_t now, Status fail_status) {
    Attempt& a = p.att[r];
    a.last_err = err;
    if (!p.spec.retry_on_refused) {
      a.out = true;
      bool all_out = std::all_of(p.att.begin(), p.att.end(), [](const Attempt& x) { return x.out; });
      if (all_out) {
        Status st = err == ECONNREFUSED ? Status::Refused : fail_status;
        finish(p, st, err, syscall);
        return false;
      }
      return true;
    }
    if (p.spec.resyn_ns <= 0) return true;
    int64_t k = now >= a.base_ns ? (now - a.base_ns) / p.spec.resyn_ns + 1 : 1;
    int64_t next = a.base_ns + k * p.spec.resyn_ns;
    if (next >= p.spec.deadline_ns) return true;
    push_timer(next, p.id, r, a.gen, TimerKind::Resyn);
    return true;
  }

  void fire(const Timer& t) {
    auto it = plans.find(t.plan);
    if (it == plans.end() || it->second->finished) return;
    Plan& p = *it->second;
    // A collecting follower sends no new SYN: the leader has chosen (or will, among the connections it has).
    if (p.collecting && t.kind != TimerKind::Deadline && t.kind != TimerKind::Settle) return;
    switch (t.kind) {
      case TimerKind::Deadline: {
        int first = earliest_alive(p);
        if (first >= 0) return win(p, static_cast<uint32_t>(first), monotonic_ns());
        record(p, EventKind::Timeout, -1, ETIMEDOUT, t.at, monotonic_ns());
        return finish(p, Status::Timeout, ETIMEDOUT, Syscall::Connect);
      }
      case TimerKind::Settle: {
        if (t.gen != p.settle_gen) return;
        int64_t now = monotonic_ns();
        size_t alive = 0;
        for (const auto& a : p.att) alive += a.est ? 1 : 0;
        if (alive == 0) return;  // every kept one died: wait for the leader's choice to establish here
        int first = earliest_alive(p);
        if (alive == 1 || now - p.first_est_ns >= kMaxCollectNs) return win(p, static_cast<uint32_t>(first), now);
        return settle_later(p, now);  // more than one alive: the leader's resets are still on their way
      }
      case TimerKind::Wave: {
        uint32_t w = t.arg;
        if (w + 1 < p.spec.waves_ns.size()) {
          int64_t nxt = p.spec.start_ns + p.spec.waves_ns[w + 1];
          if (nxt < p.spec.deadline_ns) push_timer(nxt, p.id, w + 1, 0, TimerKind::Wave);
        }
        uint64_t id = p.id;
        const int64_t n = static_cast<int64_t>(p.att.size());
        for (uint32_t r = 0; r < p.att.size(); r++) {
          Attempt& a = p.att[r];
          if (a.out) continue;
          a.gen++;  // supersedes the previous wave's re-SYN, fire and stagger timers
          a.stalls = 0;
          // Paced: attempt r's SYN is due at its slot of the spread (computed in 128 bits: no overflow).
          int64_t at = t.at + static_cast<int64_t>((static_cast<__int128>(p.spec.spread_ns) * r) / n);
          a.base_ns = at;
          if (at > t.at) {
            if (at < p.spec.deadline_ns) push_timer(at, id, r, a.gen, TimerKind::Stagger);
            continue;
          }
          if (!start_attempt(p, r, at)) return;
        }
        return;
      }
      case TimerKind::Stagger: {
        Attempt& a = p.att[t.arg];
        if (a.out || a.gen != t.gen) return;
        start_attempt(p, t.arg, t.at);
        return;
      }
      case TimerKind::Fire: {
        Attempt& a = p.att[t.arg];
        if (a.out || a.gen != t.gen) return;
        a.base_ns = t.at;
        open_attempt(p, t.arg, false, t.at);  // closes the prime socket first: same 4-tuple
        return;
      }
      case TimerKind::Resyn: {
        Attempt& a = p.att[t.arg];
        if (a.out || a.gen != t.gen || a.fd) return;
        open_attempt(p, t.arg, false, t.at);
        return;
      }
      case TimerKind::AckProbe:
        return ack_probe(p, t);
      case TimerKind::Stall: {
        Attempt& a = p.att[t.arg];
        if (a.out || a.sends != t.gen || !a.fd || a.prime) return;
        // Re-send only while nothing came back. SYN_RECV (the peer's SYN arrived, our SYN-ACK is out) or any
        // later state is left alone: a fresh ISN there would desynchronise a handshake the far side may have
        // completed — the orphaned connection of a blind second wave (docs/BENCHMARKS.md).
        if (tcp_state(a.fd.get()) != TCP_SYN_SENT) return;
        record(p, EventKind::Stall, static_cast<int>(t.arg), 0, t.at, monotonic_ns());
        a.stalls++;
        if (p.spec.stall_report) {
          a.reported = true;
          // Report only: whether a fresh ISN is safe depends on the far side's state, which only it knows.
          stall_reports.push_back(StallReport{p.id, static_cast<int>(t.arg), monotonic_ns()});
          int64_t wait = p.spec.stall_ns;
          for (uint32_t i = 0; i < a.stalls && wait < kMaxStallNs; i++) wait *= 2;
          int64_t at = t.at + std::min(wait, std::max(kMaxStallNs, p.spec.stall_ns));
          if (at < p.spec.deadline_ns) push_timer(at, p.id, t.arg, a.sends, TimerKind::Stall);
          return;
        }
        a.base_ns = t.at;
        open_attempt(p, t.arg, false, t.at);  // closes the stalled socket first (same 4-tuple), then the SYN
        return;
      }
    }
  }

  /** An AckProbe timer: a socket still in SYN_RECV asks the peer for the handshake's final ACK again. */
  void ack_probe(Plan& p, const Timer& t) {
    Attempt& a = p.att[t.arg];
    if (a.out || a.sends != t.gen || !a.fd || a.prime || a.est || a.probes >= kMaxAckProbes) return;
    // After our stall report the peer may have replaced its socket (nudge: a fresh ISN on the same 4-tuple),
    // and a SYN_RECV here may be answering that fresh SYN. The peer's NAT still tracks the old ISN until our
    // SYN-ACK reaches it (conntrack re-syncs on a SYN-ACK to a SYN it ignored); a bare ACK probe for the fresh
    // ISN is invalid there, so the peer's router answers it with a RST, which kills this socket and starts a
    // reset storm to the deadline (test/lab/stall-nudge.test.ts; seen in lab stress and clean-clone CI). Such
    // a socket is left to the kernel's SYN-ACK retransmission, which re-syncs that NAT.
    if (a.reported) return;
    int st = tcp_state(a.fd.get());
    if (st != TCP_SYN_SENT && st != TCP_SYN_RECV) return;  // established (or dead): nothing to ask for
    int64_t now = monotonic_ns();
    // In SYN_RECV at two checks in a row: the final ACK is at least a check period late (one sighting may be
    // a handshake whose ACK is still on its way; a probe then is harmless, but needless).
    bool late = st == TCP_SYN_RECV && a.recv_seen;
    a.recv_seen = st == TCP_SYN_RECV;
    if (late && (a.probes == 0 || now - a.probed_ns >= kAckProbeSpacingNs)) {
      int err = send_ack_probe(a.fd.get(), p.spec.remotes[t.arg]);
      record(p, EventKind::AckProbe, static_cast<int>(t.arg), err, t.at, now);
      a.probes = err == 0 ? a.probes + 1 : kMaxAckProbes;  // without the privileges: the kernel's timer
      a.probed_ns = now;
    }
    int64_t at = t.at + p.spec.ack_probe_ns;
    if (a.probes < kMaxAckProbes && at < p.spec.deadline_ns) push_timer(at, p.id, t.arg, t.gen, TimerKind::AckProbe);
  }

  /** Engine::nudge on the thread: a fresh SYN for every attempt still handshaking in a state `mode` allows. */
  void nudge(uint64_t id, NudgeMode mode) {
    auto it = plans.find(id);
    if (it == plans.end() || it->second->finished) return;
    Plan& p = *it->second;
    if (!p.spec.stall_report || p.collecting || p.spec.settle_ns > 0 || p.spec.reset_losers) return;
    if (p.nudges >= kMaxNudges) return;
    bool any = false;
    int64_t now = monotonic_ns();
    for (uint32_t r = 0; r < p.att.size() && !p.finished; r++) {
      Attempt& a = p.att[r];
      if (a.out || !a.fd || a.prime || a.est) continue;
      // A socket younger than its stall period has a SYN (or our answer) still in flight: replacing it would
      // put a fresh ISN behind that packet, and the peer's answer to it would meet the new socket (a RST).
      if (now - a.sent_ns < p.spec.stall_ns) continue;
      int resent = -1;
      int st = tcp_state(a.fd.get(), &resent);
      bool ok = st == TCP_SYN_RECV ? mode != NudgeMode::SentOnly : st == TCP_SYN_SENT && mode != NudgeMode::RecvOnly;
      // Once the kernel has re-sent our SYN (or SYN-ACK) on its own timer, that copy may be reaching the peer
      // now and be answered: the report that brought us here predates it, so the old sequence numbers stay.
      if (!ok || resent != 0) continue;
      // A SYN_RECV socket's close() would send a FIN (and linger as an orphan holding the 4-tuple) or, with
      // SO_LINGER 0, a RST that moves both NATs' conntrack entries to CLOSE, where the next SYNs from outside
      // are invalid: only a silent close (repair mode) makes room for the fresh SYN. Without the privilege the
      // socket is left to the kernel's own retransmission. SYN_SENT sockets close silently anyway.
      if (st == TCP_SYN_RECV && !make_silent(a.fd.get())) {
        record(p, EventKind::Nudge, static_cast<int>(r), errno, -1, now);
        continue;
      }
      if (!any) p.nudges++;
      any = true;
      record(p, EventKind::Nudge, static_cast<int>(r), 0, -1, now);
      a.base_ns = now;
      open_attempt(p, r, false, now);  // closes the old socket first (same 4-tuple), then the SYN
    }
  }

  /** The kept (follower) connection that established first and is still alive, or -1. */
  int earliest_alive(const Plan& p) const {
    int best = -1;
    for (size_t r = 0; r < p.att.size(); r++) {
      const Attempt& a = p.att[r];
      if (a.est && (best < 0 || a.est_ns < p.att[static_cast<size_t>(best)].est_ns)) best = static_cast<int>(r);
    }
    return best;
  }

  /** A follower's set changed at `now`: decide once it has been quiet for the settle period. */
  void settle_later(Plan& p, int64_t now) {
    p.settle_gen++;
    int64_t at = now + p.settle_ns;
    if (at < p.spec.deadline_ns) push_timer(at, p.id, 0, p.settle_gen, TimerKind::Settle);
  }

  /** Attempt r's established socket wins: hand its fd out, close every other attempt. */
  void win(Plan& p, uint32_t r, int64_t now) {
    Attempt& a = p.att[r];
    epoll_ctl(ep.get(), EPOLL_CTL_DEL, a.fd.get(), nullptr);  // the fd outlives our epoll interest
    if (p.spec.no_delay) {
      int one = 1;
      setsockopt(a.fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    by_serial.erase(a.serial);
    a.serial = 0;
    a.est = false;
    st_sockets.fetch_sub(1, std::memory_order_relaxed);
    Outcome& o = *p.out;
    o.fd = std::move(a.fd);
    local_name(o.fd.get(), &o.local);
    peer_name(o.fd.get(), &o.remote);
    o.remote_index = static_cast<int>(r);
    o.established_ns = a.est_ns > 0 ? a.est_ns : now;
    finish(p, Status::Established, 0, Syscall::None);
  }

  /** A follower keeps attempt r's new connection and watches it (data: chosen; FIN or RST: dropped). */
  void keep(Plan& p, uint32_t r, int64_t now) {
    Attempt& a = p.att[r];
    a.est = true;
    a.est_ns = now;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;  // EPOLLERR and EPOLLHUP are always reported
    ev.data.u64 = a.serial;
    if (epoll_ctl(ep.get(), EPOLL_CTL_MOD, a.fd.get(), &ev) != 0) {
      // Cannot watch it: keep it without a watch (it still counts), the settle timer decides.
      record(p, EventKind::Error, static_cast<int>(r), errno, -1, now);
    }
    int64_t settle = p.spec.settle_ns;
    tcp_info ti{};
    socklen_t len = sizeof ti;
    if (getsockopt(a.fd.get(), IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
      settle = std::max(settle, static_cast<int64_t>(ti.tcpi_rtt) * 2000);  // µs -> ns, twice
    }
    settle = std::min(settle, 4 * p.spec.settle_ns);
    if (!p.collecting) {
      p.collecting = true;
      p.first_est_ns = now;
    }
    p.settle_ns = std::max(p.settle_ns, settle);
    settle_later(p, now);
  }

  void on_socket(uint64_t serial, uint32_t events) {
    auto it = by_serial.find(serial);
    if (it == by_serial.end()) return;  // closed earlier in this batch (finish() closes every attempt)
    Plan& p = *it->second.plan;
    uint32_t r = it->second.remote;
    Attempt& a = p.att[r];
    int err = socket_error(a.fd.get());
    if (err == 0 && (events & (EPOLLERR | EPOLLHUP))) err = ECONNRESET;
    int64_t now = monotonic_ns();
    if (a.est) {
      // A kept connection (follower). Data means the leader chose it (even with a FIN after it: a half-close);
      // a RST, or a FIN with nothing before it, means it dropped it.
      if (err == 0 && (events & EPOLLIN)) {
        char b;
        if (recv(a.fd.get(), &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1) return win(p, r, now);
      }
      record(p, EventKind::Rst, static_cast<int>(r), err != 0 ? err : ECONNRESET, -1, now);
      a.est = false;
      a.out = true;  // no new SYN for it
      close_attempt(a);
      return settle_later(p, now);
    }
    if (err == 0) {
      record(p, EventKind::Established, static_cast<int>(r), 0, -1, now);
      // A follower keeps every connection until the leader's choice is clear; anyone else: first wins.
      if (p.spec.settle_ns > 0) return keep(p, r, now);
      a.est_ns = now;
      return win(p, r, now);
    }
    bool prime = a.prime;
    record(p, failure_kind(err), static_cast<int>(r), err, -1, now);
    close_attempt(a);
    if (prime) return;  // expected: the prime SYN dies at a router; the fire timer sends the real one
    on_failure(p, r, err, Syscall::Connect, now, Status::Unreachable);
  }

  /** True when a timer no longer matters (its plan ended, or its attempt moved on). */
  bool stale(const Timer& t) const {
    auto it = plans.find(t.plan);
    if (it == plans.end() || it->second->finished) return true;
    if (t.kind == TimerKind::Fire || t.kind == TimerKind::Resyn || t.kind == TimerKind::Stagger)
      return it->second->att[t.arg].gen != t.gen;
    if (t.kind == TimerKind::Stall || t.kind == TimerKind::AckProbe)
      return it->second->att[t.arg].sends != t.gen || !it->second->att[t.arg].fd;
    if (t.kind == TimerKind::Settle) return it->second->settle_gen != t.gen;
    if (it->second->collecting && t.kind != TimerKind::Deadline) return true;  // no new SYN while collecting
    return false;
  }

  /** Drops stale timers from the top of the heap, so we neither wake nor spin for them. */
  void prune_top() {
    while (!heap.empty() && stale(heap.top())) heap.pop();
  }

  /**
   * Opens and binds the sockets the next timer will connect, before the spin: at the instant only
   * connect() is left (socket + options + bind cost tens of microseconds).
   */
  void prepare(const Timer& t) {
    if (t.kind == TimerKind::Deadline || t.kind == TimerKind::Settle) return;
    auto it = plans.find(t.plan);
    if (it == plans.end() || it->second->finished) return;
    Plan& p = *it->second;
    if (p.hold) return;  // the plan's first SYN has its socket already
    auto prep = [&](uint32_t r, bool prime) {
      Attempt& a = p.att[r];
      if (a.out || a.pre) return;
      SocketOptions o;
      o.syn_cnt = p.spec.syn_cnt;
      o.no_delay = false;
      o.ttl = prime ? p.spec.prime_ttl : p.spec.first_syn_ttl;
      SysError e;
      a.pre = open_socket(p, o, &e);  // on failure open_attempt retries and reports
      a.pre_prime = prime;
    };
    switch (t.kind) {
      case TimerKind::Wave:
        for (uint32_t r = 0; r < p.att.size() && r < 16; r++) prep(r, p.spec.profile == Profile::Prime);
        break;
      case TimerKind::Fire:
        if (p.att[t.arg].gen == t.gen) prep(t.arg, false);
        break;
      case TimerKind::Stagger:
        if (p.att[t.arg].gen == t.gen) prep(t.arg, p.spec.profile == Profile::Prime);
        break;
      case TimerKind::Resyn:
        if (p.att[t.arg].gen == t.gen && !p.att[t.arg].fd) prep(t.arg, false);
        break;
      case TimerKind::Stall:
        break;  // a fresh socket cannot be bound beside the stalled one: open_attempt() opens it
      case TimerKind::AckProbe:
        break;  // no socket of ours to open
      case TimerKind::Deadline:
      case TimerKind::Settle:
        break;
    }
  }

  void run_due() {
    prune_top();
    if (heap.empty()) return;
    int64_t t = heap.top().at;
    int64_t now = monotonic_ns();
    if (t - now > spin_ns) return;
    if (t - now > 20'000) {
      prepare(heap.top());
      now = monotonic_ns();
    }
    while (now < t) {  // the last stretch: spin, timerfd wakeups are only good to tens of microseconds
      cpu_relax();
      now = monotonic_ns();
    }
    while (!heap.empty() && heap.top().at <= now) {
      Timer tm = heap.top();
      heap.pop();
      fire(tm);
    }
  }
};

Engine::Engine(std::function<void()> notify) : notify_(std::move(notify)), impl_(std::make_unique<Impl>()) {
  impl_->owner = this;
}

Engine::~Engine() {
  request_stop();
  join();
}

SysError Engine::start() {
  if (started_) return {EALREADY, Syscall::None};
  started_ = true;
  Impl& im = *impl_;
  im.ep.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!im.ep) return {errno, Syscall::EpollCreate};
  im.tfd.reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!im.tfd) return {errno, Syscall::TimerfdCreate};
  im.efd.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!im.efd) return {errno, Syscall::Eventfd};
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kEventTok;
  if (epoll_ctl(im.ep.get(), EPOLL_CTL_ADD, im.efd.get(), &ev) != 0) return {errno, Syscall::EpollCtl};
  ev.data.u64 = kTimerTok;
  if (epoll_ctl(im.ep.get(), EPOLL_CTL_ADD, im.tfd.get(), &ev) != 0) return {errno, Syscall::EpollCtl};
  thread_ = std::thread([this] { run(); });
  return {};
}

void Engine::post(std::function<void(Impl&)> cmd) {
  // Under the lock so that the thread cannot close the eventfd between our check and our write.
  std::lock_guard<std::mutex> lk(cmd_mu_);
  cmds_.push_back(std::move(cmd));
  if (cmds_.size() == 1 && impl_->efd) {  // the thread swaps the whole queue out: one wakeup per batch
    uint64_t one = 1;
    ssize_t w = write(impl_->efd.get(), &one, sizeof one);
    (void)w;  // EAGAIN means the counter is already non-zero: the thread wakes anyway
  }
}

uint64_t Engine::submit(PlanSpec spec) {
  uint64_t id = next_id_.fetch_add(1);
  auto holder = std::make_shared<PlanSpec>(std::move(spec));
  post([id, holder](Impl& im) { im.add_plan(id, std::move(*holder)); });
  return id;
}

void Engine::abort(uint64_t id) {
  post([id](Impl& im) {
    auto it = im.plans.find(id);
    if (it == im.plans.end() || it->second->finished) return;
    Plan& p = *it->second;
    im.record(p, EventKind::Abort, -1, ECANCELED, -1, monotonic_ns());
    im.finish(p, Status::Aborted, ECANCELED, Syscall::None);
  });
}

void Engine::nudge(uint64_t id, NudgeMode mode) {
  post([id, mode](Impl& im) { im.nudge(id, mode); });
}

void Engine::request_stop() {
  if (!thread_.joinable()) return;
  post([](Impl& im) { im.stopping = true; });
}

void Engine::join() {
  if (thread_.joinable()) thread_.join();
}

std::vector<std::unique_ptr<Outcome>> Engine::take(std::vector<StallReport>* stalls) {
  std::lock_guard<std::mutex> lk(out_mu_);
  std::vector<std::unique_ptr<Outcome>> v;
  v.swap(outs_);
  if (stalls) {
    stalls->clear();
    stalls->swap(stalls_);
  } else {
    stalls_.clear();  // nobody reads them: keep the both-empty invariant the notify relies on
  }
  return v;
}

EngineStats Engine::stats() const {
  EngineStats s;
  s.plans = impl_->st_plans.load(std::memory_order_relaxed);
  s.sockets = impl_->st_sockets.load(std::memory_order_relaxed);
  s.max_sockets = impl_->st_max_sockets.load(std::memory_order_relaxed);
  s.syns = impl_->st_syns.load(std::memory_order_relaxed);
  s.plans_done = impl_->st_done.load(std::memory_order_relaxed);
  s.realtime = realtime_.load();
  return s;
}

void Engine::run() {
  // Signals belong to Node's main thread; timer slack 1 ns so timerfd wakes us when asked, not 50 us later.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  pthread_setname_np(pthread_self(), "onionpunch-eng");
  if (rt_priority_ > 0) {
    // A mostly-sleeping thread whose wakeups must not wait behind other runnable work. Spins are bounded
    // (at most kMaxSpinNs per timer) and the kernel's RT throttling caps any runaway.
    sched_param sp{};
    sp.sched_priority = rt_priority_;
    realtime_.store(pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0);
  }

  Impl& im = *impl_;
  im.fixed_spin_ns = fixed_spin_ns_;
  if (fixed_spin_ns_ > 0) im.spin_ns = fixed_spin_ns_;
  std::vector<epoll_event> evs(512);
  std::vector<std::function<void(Impl&)>> cmds;
  for (;;) {
    int timeout = -1;
    im.prune_top();
    if (!im.heap.empty()) {
      int64_t at = im.heap.top().at - im.spin_ns;
      if (at <= monotonic_ns()) {
        timeout = 0;
      } else {
        im.arm(at);
      }
    }
    int n = epoll_wait(im.ep.get(), evs.data(), static_cast<int>(evs.size()), timeout);
    if (n < 0 && errno != EINTR) {
      // Nothing can be waited for any more (EBADF, EINVAL, ENOMEM...): every plan ends now, with the reason,
      // and so does every plan submitted after (see add_plan); then the thread exits as if stopped.
      im.loop_error = {errno, Syscall::EpollWait};
      im.stopping = true;
      im.finish_all(Status::LoopFailed, im.loop_error.err, im.loop_error.syscall);
      n = 0;
    }
    for (int i = 0; i < n; i++) {
      uint64_t tok = evs[i].data.u64;
      if (tok == kEventTok) {
        uint64_t v;
        ssize_t r = read(im.efd.get(), &v, sizeof v);
        (void)r;
        {
          std::lock_guard<std::mutex> lk(cmd_mu_);
          cmds.swap(cmds_);
        }
        for (auto& c : cmds) c(im);
        cmds.clear();
      } else if (tok == kTimerTok) {
        uint64_t v;
        ssize_t r = read(im.tfd.get(), &v, sizeof v);
        (void)r;
        if (im.armed_at > 0) im.observe_wakeup(monotonic_ns() - im.armed_at);
        im.armed_at = -1;
      } else {
        im.on_socket(tok, evs[i].events);
      }
    }
    if (im.stopping) {
      im.finish_all(Status::Stopped, 0, Syscall::None);
    } else {
      im.run_due();
    }
    im.reap();
    if (!im.pending.empty() || !im.stall_reports.empty()) {
      bool was_empty;
      {
        std::lock_guard<std::mutex> lk(out_mu_);
        was_empty = outs_.empty() && stalls_.empty();
        for (auto& o : im.pending) outs_.push_back(std::move(o));
        for (auto& r : im.stall_reports) stalls_.push_back(r);
      }
      im.pending.clear();
      im.stall_reports.clear();
      if (was_empty && notify_) notify_();
    }
    im.close_deferred();
    if (im.stopping) break;
  }
  // Plans submitted after the stop request end as Stopped too. Taking the last commands and closing the
  // eventfd under one lock means nothing posted before that moment is lost.
  {
    std::lock_guard<std::mutex> lk(cmd_mu_);
    cmds.swap(cmds_);
    im.efd.reset();
  }
  for (auto& c : cmds) c(im);
  cmds.clear();
  im.reap();
  if (!im.pending.empty()) {
    std::lock_guard<std::mutex> lk(out_mu_);
    for (auto& o : im.pending) outs_.push_back(std::move(o));
    im.pending.clear();
  }
  im.close_deferred();
  im.heap = {};
  im.by_serial.clear();
  im.plans.clear();
  im.ep.reset();
  im.tfd.reset();
  stopped_.store(true, std::memory_order_release);
  if (notify_) notify_();
}

}  // namespace onionpunch
