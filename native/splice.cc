#include "splice.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>

#include "engine.h"  // monotonic_ns

namespace onionpunch {

namespace {

constexpr uint64_t kEventTok = 1;
// Socket tokens: bridge id * 2 (+1 for b). Ids start at 1, so no token collides with kEventTok.
constexpr int kRoundsPerTurn = 8;  // chunks one direction moves before the loop turns to other work

/** One direction: `in` → pipe → `out`, plus what JS had read from `in` before the hand-off. */
struct Dir {
  Fd pr, pw;                  // the pipe
  size_t in_pipe = 0;         // bytes spliced in but not yet out
  std::vector<uint8_t> head;  // written before anything spliced
  size_t head_off = 0;
  bool eof = false;           // `in` said EOF
  bool done = false;          // EOF forwarded (shutdown(out, SHUT_WR))
  uint64_t bytes = 0;
};

struct Bridge {
  uint64_t id = 0;
  Fd a, b;
  Dir ab, ba;
  int64_t idle_ns = 0;
  int64_t last_ns = 0;
  bool ended = false;
};

enum class Step { Wait, More, Finished, Failed };

}  // namespace

struct Splicer::Impl {
  Fd ep, efd;
  std::unordered_map<uint64_t, std::unique_ptr<Bridge>> bridges;
  std::vector<uint64_t> again;  // bridges that stopped for fairness, not for EAGAIN
  std::vector<SpliceResult> pending;
  bool stopping = false;
  std::atomic<uint64_t>* active = nullptr;

  void end(Bridge& br, SpliceEnd why, int err, Syscall sc, bool on_a) {
    if (br.ended) return;
    br.ended = true;
    SpliceResult r;
    r.id = br.id;
    r.a_to_b = br.ab.bytes;
    r.b_to_a = br.ba.bytes;
    r.end = why;
    r.err = err;
    r.syscall = sc;
    r.error_on_a = on_a;
    pending.push_back(r);
    // Closing the only descriptors also takes them out of the epoll set; the pipes go with the Bridge.
    br.a.reset();
    br.b.reset();
    active->fetch_sub(1, std::memory_order_relaxed);
  }

  void reap() {
    for (auto it = bridges.begin(); it != bridges.end();) {
      if (it->second->ended) it = bridges.erase(it);
      else ++it;
    }
  }

  /**
   * Moves what `in` has towards `out`. Wait: blocked on a socket (epoll will tell). More: fairness limit hit.
   * Finished: EOF forwarded. Failed: `*err`/`*sc` set, `*on_in` tells which side failed.
   */
  Step pump(Dir& d, int in, int out, int* err, Syscall* sc, bool* on_in, int64_t now, int64_t* last) {
    if (d.done) return Step::Finished;
    for (int round = 0; round < kRoundsPerTurn; round++) {
      if (d.head_off < d.head.size()) {
        ssize_t n = ::send(out, d.head.data() + d.head_off, d.head.size() - d.head_off, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) return Step::Wait;
          *err = errno, *sc = Syscall::Write, *on_in = false;
          return Step::Failed;
        }
        d.head_off += static_cast<size_t>(n);
        d.bytes += static_cast<uint64_t>(n);
        *last = now;
        if (d.head_off == d.head.size()) std::vector<uint8_t>().swap(d.head), d.head_off = 0;
        continue;
      }
      if (d.in_pipe > 0) {
        ssize_t n = ::splice(d.pr.get(), nullptr, out, nullptr, d.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) return Step::Wait;
          *err = errno, *sc = Syscall::Splice, *on_in = false;
          return Step::Failed;
        }
        d.in_pipe -= static_cast<size_t>(n);
        d.bytes += static_cast<uint64_t>(n);
        *last = now;
        continue;
      }
      if (d.eof) {
        // Everything `in` sent is out: carry its FIN across. ENOTCONN = the other side is already gone.
        if (::shutdown(out, SHUT_WR) != 0 && errno != ENOTCONN) {
          *err = errno, *sc = Syscall::Shutdown, *on_in = false;
          return Step::Failed;
        }
        d.done = true;
        return Step::Finished;
      }
      ssize_t n = ::splice(in, nullptr, d.pw.get(), nullptr, kChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n == 0) {
        d.eof = true;
        continue;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return Step::Wait;
        *err = errno, *sc = Syscall::Splice, *on_in = true;
        return Step::Failed;
      }
      d.in_pipe += static_cast<size_t>(n);
      *last = now;
    }
    return Step::More;
  }

  /** Runs both directions of a bridge as far as the sockets allow. */
  void service(Bridge& br) {
    if (br.ended) return;
    int64_t now = monotonic_ns();
    bool more = false;
    for (int which = 0; which < 2; which++) {
      Dir& d = which == 0 ? br.ab : br.ba;
      int in = which == 0 ? br.a.get() : br.b.get();
      int out = which == 0 ? br.b.get() : br.a.get();
      int err = 0;
      Syscall sc = Syscall::None;
      bool on_in = false;
      Step s = pump(d, in, out, &err, &sc, &on_in, now, &br.last_ns);
      if (s == Step::Failed) {
        bool on_a = (which == 0) == on_in;
        return end(br, SpliceEnd::Error, err, sc, on_a);
      }
      if (s == Step::More) more = true;
    }
    if (br.ab.done && br.ba.done) return end(br, SpliceEnd::Done, 0, Syscall::None, false);
    if (more) again.push_back(br.id);
  }

  /** An EPOLLERR without a pending read/write error to report: the socket's own error. */
  void on_error(Bridge& br, bool on_a) {
    int fd = on_a ? br.a.get() : br.b.get();
    int e = socket_error(fd);
    if (e != 0) end(br, SpliceEnd::Error, e, Syscall::Splice, on_a);
  }

  void add(uint64_t id, SpliceSpec& spec, int64_t idle_ns) {
    auto br = std::make_unique<Bridge>();
    br->id = id;
    br->a = std::move(spec.a);
    br->b = std::move(spec.b);
    br->ab.head = std::move(spec.a_pending);
    br->ba.head = std::move(spec.b_pending);
    br->idle_ns = idle_ns;
    br->last_ns = monotonic_ns();
    Bridge& b = *br;
    bridges.emplace(id, std::move(br));
    if (stopping) return end(b, SpliceEnd::Stopped, 0, Syscall::None, false);
    for (Dir* d : {&b.ab, &b.ba}) {
      int p[2];
      if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return end(b, SpliceEnd::Error, errno, Syscall::Pipe, false);
      d->pr.reset(p[0]);
      d->pw.reset(p[1]);
      (void)fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(kChunk));  // best effort: 64 kB is the fallback
    }
    for (int which = 0; which < 2; which++) {
      int fd = which == 0 ? b.a.get() : b.b.get();
      int fl = fcntl(fd, F_GETFL);
      if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        return end(b, SpliceEnd::Error, errno, Syscall::Fcntl, which == 0);
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = id * 2 + static_cast<uint64_t>(which);
      if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        return end(b, SpliceEnd::Error, errno, Syscall::EpollCtl, which == 0);
      }
    }
    service(b);  // bytes may be waiting already (edge-triggered: no event would come for them)
  }

  /** Ends bridges idle past their timeout; returns ns until the next could expire (at most 1 s). */
  int64_t check_idle(int64_t now) {
    int64_t next = 1'000'000'000;
    for (auto& kv : bridges) {
      Bridge& br = *kv.second;
      if (br.ended) continue;
      int64_t left = br.last_ns + br.idle_ns - now;
      if (left <= 0) end(br, SpliceEnd::Idle, 0, Syscall::None, false);
      else next = std::min(next, left);
    }
    return next;
  }
};

Splicer::Splicer(std::function<void()> notify) : notify_(std::move(notify)), impl_(std::make_unique<Impl>()) {
  impl_->active = &active_;
}

Splicer::~Splicer() { stop(); }

SysError Splicer::start() {
  if (thread_.joinable() || impl_->ep) return {EALREADY, Syscall::None};
  Impl& im = *impl_;
  im.ep.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!im.ep) return {errno, Syscall::EpollCreate};
  im.efd.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!im.efd) return {errno, Syscall::Eventfd};
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kEventTok;
  if (epoll_ctl(im.ep.get(), EPOLL_CTL_ADD, im.efd.get(), &ev) != 0) return {errno, Syscall::EpollCtl};
  thread_ = std::thread([this] { run(); });
  return {};
}

void Splicer::post(std::function<void(Impl&)> cmd) {
  std::lock_guard<std::mutex> lk(cmd_mu_);
  cmds_.push_back(std::move(cmd));
  if (cmds_.size() == 1 && impl_->efd) {
    uint64_t one = 1;
    ssize_t w = write(impl_->efd.get(), &one, sizeof one);
    (void)w;  // EAGAIN: the counter is non-zero, the thread wakes anyway
  }
}

uint64_t Splicer::add(SpliceSpec spec) {
  uint64_t id = next_id_.fetch_add(1);
  active_.fetch_add(1, std::memory_order_relaxed);
  int64_t idle = spec.idle_ns > 0 ? spec.idle_ns : 30LL * 60 * 1'000'000'000;
  auto holder = std::make_shared<SpliceSpec>(std::move(spec));
  post([id, holder, idle](Impl& im) { im.add(id, *holder, idle); });
  return id;
}

void Splicer::close(uint64_t id) {
  post([id](Impl& im) {
    auto it = im.bridges.find(id);
    if (it != im.bridges.end()) im.end(*it->second, SpliceEnd::Closed, 0, Syscall::None, false);
  });
}

void Splicer::stop() {
  if (!thread_.joinable()) return;
  post([](Impl& im) { im.stopping = true; });
  thread_.join();
}

std::vector<SpliceResult> Splicer::take() {
  std::lock_guard<std::mutex> lk(out_mu_);
  std::vector<SpliceResult> v;
  v.swap(outs_);
  return v;
}

void Splicer::run() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  pthread_setname_np(pthread_self(), "onionpunch-spl");
  Impl& im = *impl_;
  std::vector<epoll_event> evs(256);
  std::vector<std::function<void(Impl&)>> cmds;
  std::vector<uint64_t> again;
  bool cmds_seen = false;  // commands ran: a new bridge may expire sooner than the next check
  int64_t idle_check_at = 0;
  for (;;) {
    int64_t wait_ns = idle_check_at - monotonic_ns();
    int timeout = !im.again.empty() || wait_ns <= 0 ? 0 : static_cast<int>(wait_ns / 1'000'000) + 1;
    int n = epoll_wait(im.ep.get(), evs.data(), static_cast<int>(evs.size()), timeout);
    if (n < 0) {
      if (errno != EINTR) {
        // Nothing can be waited for any more: every bridge ends with the reason, and the thread with them.
        int e = errno;
        for (auto& kv : im.bridges) im.end(*kv.second, SpliceEnd::Error, e, Syscall::EpollWait, false);
        im.stopping = true;
      }
      n = 0;
    }
    again.swap(im.again);
    im.again.clear();
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
        cmds_seen = cmds_seen || !cmds.empty();
        cmds.clear();
        continue;
      }
      auto it = im.bridges.find(tok / 2);
      if (it == im.bridges.end()) continue;
      Bridge& br = *it->second;
      im.service(br);
      if (!br.ended && (evs[i].events & EPOLLERR)) im.on_error(br, tok % 2 == 0);
    }
    for (uint64_t id : again) {
      auto it = im.bridges.find(id);
      if (it != im.bridges.end()) im.service(*it->second);
    }
    again.clear();
    int64_t now = monotonic_ns();
    if (now >= idle_check_at || cmds_seen) {
      idle_check_at = now + im.check_idle(now);
      cmds_seen = false;
    }
    if (im.stopping) {
      for (auto& kv : im.bridges) im.end(*kv.second, SpliceEnd::Stopped, 0, Syscall::None, false);
    }
    im.reap();
    if (!im.pending.empty()) {
      {
        std::lock_guard<std::mutex> lk(out_mu_);
        for (auto& r : im.pending) outs_.push_back(r);
      }
      im.pending.clear();
      if (notify_) notify_();
    }
    if (im.stopping) break;
  }
  // Bridges added after the stop request end Stopped too (their sockets closed), nothing is lost.
  {
    std::lock_guard<std::mutex> lk(cmd_mu_);
    cmds.swap(cmds_);
    im.efd.reset();
  }
  for (auto& c : cmds) c(im);
  im.reap();
  if (!im.pending.empty()) {
    std::lock_guard<std::mutex> lk(out_mu_);
    for (auto& r : im.pending) outs_.push_back(r);
    im.pending.clear();
  }
  im.ep.reset();
}

}  // namespace onionpunch
