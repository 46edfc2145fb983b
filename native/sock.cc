#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <utility>

namespace onionpunch {

uint16_t SockAddr::port() const {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

void SockAddr::set_port(uint16_t port) {
  if (ss.ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(port);
  if (ss.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(port);
}

std::string SockAddr::address() const {
  char buf[INET6_ADDRSTRLEN + 1] = {0};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

bool SockAddr::operator==(const SockAddr& o) const {
  return len == o.len && memcmp(&ss, &o.ss, len) == 0;
}

bool parse_addr(const std::string& text, uint16_t port, SockAddr* out) {
  *out = SockAddr{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->ss);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out->len = sizeof(sockaddr_in);
    return true;
  }
  std::string host = text;
  unsigned scope = 0;
  auto pct = text.find('%');
  if (pct != std::string::npos) {
    host = text.substr(0, pct);
    std::string zone = text.substr(pct + 1);
    scope = if_nametoindex(zone.c_str());
    if (scope == 0) {
      char* end = nullptr;
      unsigned long v = strtoul(zone.c_str(), &end, 10);
      if (zone.empty() || *end != '\0') return false;
      scope = static_cast<unsigned>(v);
    }
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->ss);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    v6->sin6_scope_id = scope;
    out->len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

const char* errno_name(int err) {
  const char* n = strerrorname_np(err);
  if (n != nullptr) return n;
  static thread_local char buf[16];
  snprintf(buf, sizeof buf, "E%d", err);
  return buf;
}

int set_ttl(int fd, int family, int ttl) {
  int rc = family == AF_INET6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl)
                              : setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
  return rc == 0 ? 0 : errno;
}

// The per-attempt options both kinds of socket get (SYN count, Nagle, first-SYN TTL); false with *err set.
static bool apply_attempt_options(int fd, int family, const SocketOptions& opt, SysError* err) {
  int one = 1;
  if (opt.syn_cnt > 0 && setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &opt.syn_cnt, sizeof opt.syn_cnt) != 0) {
    *err = {errno, Syscall::Setsockopt};
    return false;
  }
  if (opt.no_delay && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    *err = {errno, Syscall::Setsockopt};
    return false;
  }
  if (opt.ttl > 0) {
    int e = set_ttl(fd, family, opt.ttl);
    if (e != 0) {
      *err = {e, Syscall::Setsockopt};
      return false;
    }
  }
  return true;
}

Fd open_bound_socket(const SockAddr& local, const SocketOptions& opt, SysError* err) {
  *err = SysError{};
  Fd fd(socket(local.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd) {
    *err = {errno, Syscall::Socket};
    return Fd();
  }
  int one = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    *err = {errno, Syscall::Setsockopt};
    return Fd();
  }
  if (local.family() == AF_INET6 &&
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    *err = {errno, Syscall::Setsockopt};
    return Fd();
  }
  if (!apply_attempt_options(fd.get(), local.family(), opt, err)) return Fd();
  if (bind(fd.get(), local.sa(), local.len) != 0) {
    *err = {errno, Syscall::Bind};
    return Fd();
  }
  return fd;
}

#if defined(__linux__) && !defined(IP_BIND_ADDRESS_NO_PORT)
#define IP_BIND_ADDRESS_NO_PORT 24  // linux/in.h, since Linux 4.2
#endif

Fd open_ephemeral_socket(const SockAddr& local, const SocketOptions& opt, SysError* err) {
  *err = SysError{};
  Fd fd(socket(local.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd) {
    *err = {errno, Syscall::Socket};
    return Fd();
  }
  int one = 1;
  if (local.family() == AF_INET6 &&
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    *err = {errno, Syscall::Setsockopt};
    return Fd();
  }
#ifdef IP_BIND_ADDRESS_NO_PORT
  if (setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one) != 0) {
    *err = {errno, Syscall::Setsockopt};
    return Fd();
  }
#endif
  if (!apply_attempt_options(fd.get(), local.family(), opt, err)) return Fd();
  SockAddr any = local;
  any.set_port(0);
  if (bind(fd.get(), any.sa(), any.len) != 0) {
    *err = {errno, Syscall::Bind};
    return Fd();
  }
  return fd;
}

int start_connect(int fd, const SockAddr& remote) {
  if (connect(fd, remote.sa(), remote.len) == 0) return 0;
  int e = errno;
  return e == EINPROGRESS ? 0 : e;
}

int socket_error(int fd) {
  int e = 0;
  socklen_t l = sizeof e;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) != 0) return errno;
  return e;
}

int tcp_state(int fd, int* retransmissions) {
  tcp_info ti{};
  socklen_t l = sizeof ti;
  bool ok = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 && l >= 1;
  if (retransmissions) {
    bool has = ok && l >= offsetof(tcp_info, tcpi_total_retrans) + sizeof ti.tcpi_total_retrans;
    *retransmissions = has ? static_cast<int>(ti.tcpi_total_retrans) : -1;
  }
  return ok ? ti.tcpi_state : -1;
}

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

int64_t last_data_received_ns(int fd) {
  tcp_info ti{};
  socklen_t l = sizeof ti;
  int64_t now = monotonic_ns();
  bool ok = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 &&
            l >= offsetof(tcp_info, tcpi_last_data_recv) + sizeof ti.tcpi_last_data_recv;
  // Before any data the kernel's stamp is the handshake's: callers ask only after they have read something.
  if (!ok || ti.tcpi_state == 0) return -1;
  int64_t age = static_cast<int64_t>(ti.tcpi_last_data_recv) * 1000000;
  return age < now ? now - age : -1;
}

bool make_silent(int fd) {
  // TCP_REPAIR (CAP_NET_ADMIN): close() of a socket in repair mode sends neither FIN nor RST and frees the
  // 4-tuple at once (tcp_disconnect skips the active reset for a repaired socket).
  int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &one, sizeof one) == 0;
}

namespace {

/** The Internet checksum (RFC 1071) of `n` bytes, continuing `sum`. */
uint32_t csum_add(uint32_t sum, const uint8_t* b, size_t n) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(b[n - 1] << 8);
  return sum;
}

uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xffff);
}

/** The socket's next send and receive sequence numbers, read in repair mode (which is left again at once). */
int queue_seqs(int fd, uint32_t* snd, uint32_t* rcv) {
  int on = TCP_REPAIR_ON;
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) != 0) return errno;
  int err = 0;
  int q = TCP_SEND_QUEUE;
  socklen_t l = sizeof *snd;
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) != 0 ||
      getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, snd, &l) != 0)
    err = errno;
  q = TCP_RECV_QUEUE;
  l = sizeof *rcv;
  if (err == 0 && (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof q) != 0 ||
                   getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, rcv, &l) != 0))
    err = errno;
  // Out of repair whatever happened, without the window probe TCP_REPAIR_OFF sends; leaving repair also clears
  // SO_REUSEADDR (sk_reuse), which the punch port's other sockets rely on.
  int off = TCP_REPAIR_OFF_NO_WP;
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof off) != 0 && err == 0) err = errno;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 && err == 0) err = errno;
  return err;
}

}  // namespace

int send_ack_probe(int fd, const SockAddr& remote) {
  SockAddr local;
  if (SysError e = local_name(fd, &local)) return e.err;
  if (local.family() != remote.family()) return EAFNOSUPPORT;
  uint32_t snd = 0, rcv = 0;
  if (int e = queue_seqs(fd, &snd, &rcv)) return e;
  Fd raw(socket(local.family(), SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!raw) return errno;
  SockAddr src = local;
  src.set_port(0);  // a raw socket's "port" is its protocol: 0 takes the socket's own
  SockAddr dst = remote;
  dst.set_port(0);
  if (bind(raw.get(), src.sa(), src.len) != 0) return errno;
  // A bare ACK one sequence number back (a keepalive's shape): below the peer's window whatever its state, so
  // its TCP drops it and answers with an ACK carrying its current numbers — the final ACK of the handshake.
  uint8_t h[20] = {};
  auto put16 = [&](size_t at, uint32_t v) {
    h[at] = static_cast<uint8_t>(v >> 8);
    h[at + 1] = static_cast<uint8_t>(v);
  };
  auto put32 = [&](size_t at, uint32_t v) {
    put16(at, v >> 16);
    put16(at + 2, v & 0xffff);
  };
  put16(0, local.port());
  put16(2, remote.port());
  put32(4, snd - 1);
  put32(8, rcv);
  h[12] = 5 << 4;  // 20-byte header, no options
  h[13] = 0x10;    // ACK
  put16(14, 1024);
  if (local.family() == AF_INET6) {
    int offset = 16;  // the kernel fills in the checksum (pseudo-header included) for an IPv6 raw socket
    if (setsockopt(raw.get(), IPPROTO_IPV6, IPV6_CHECKSUM, &offset, sizeof offset) != 0) return errno;
  } else {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&local.ss);
    const auto* d4 = reinterpret_cast<const sockaddr_in*>(&remote.ss);
    uint8_t pseudo[12] = {};
    memcpy(pseudo, &s4->sin_addr, 4);
    memcpy(pseudo + 4, &d4->sin_addr, 4);
    pseudo[9] = IPPROTO_TCP;
    pseudo[11] = sizeof h;
    put16(16, csum_fold(csum_add(csum_add(0, pseudo, sizeof pseudo), h, sizeof h)));
  }
  if (sendto(raw.get(), h, sizeof h, 0, dst.sa(), dst.len) != static_cast<ssize_t>(sizeof h)) return errno;
  return 0;
}

SysError local_name(int fd, SockAddr* out) {
  *out = SockAddr{};
  out->len = sizeof out->ss;
  if (getsockname(fd, out->sa(), &out->len) != 0) return {errno, Syscall::Getsockname};
  return {};
}

SysError peer_name(int fd, SockAddr* out) {
  *out = SockAddr{};
  out->len = sizeof out->ss;
  if (getpeername(fd, out->sa(), &out->len) != 0) return {errno, Syscall::Getpeername};
  return {};
}

long raise_fd_limit(long want) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  if (static_cast<long>(rl.rlim_cur) >= want) return static_cast<long>(rl.rlim_cur);
  rlimit next = rl;
  next.rlim_cur = static_cast<rlim_t>(want);
  if (next.rlim_max < next.rlim_cur) next.rlim_max = next.rlim_cur;
  if (setrlimit(RLIMIT_NOFILE, &next) != 0) {
    // Not allowed to raise the hard limit: go as high as it permits.
    next = rl;
    next.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &next);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  return static_cast<long>(rl.rlim_cur);
}

namespace {

/** A reusable socket bound to `local` (port 0: the kernel searches) into `out`, and the port it got. */
SysError bind_reusable(const SockAddr& local, uint16_t* port, Fd* out) {
  SysError err;
  SocketOptions opt;
  Fd fd = open_bound_socket(local, opt, &err);
  if (err) return err;
  SockAddr name;
  err = local_name(fd.get(), &name);
  if (err) return err;
  *port = name.port();
  *out = std::move(fd);
  return {};
}

/** The ephemeral range of this process's network namespace, read once (a process does not change it). */
struct EphemeralRange {
  unsigned lo = 32768, hi = 60999;
  EphemeralRange() {
    FILE* f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (!f) return;
    unsigned a = 0, b = 0;
    if (fscanf(f, "%u %u", &a, &b) == 2 && a > 0 && b >= a && b <= 65535) {
      lo = a;
      hi = b;
    }
    fclose(f);
  }
};

/**
 * Binds `port` only if no socket at all uses it (no reuse option at bind time: TIME_WAIT and bound sockets
 * conflict), then makes the holder reusable so the plan's sockets bind beside it. The kernel checks a later
 * bind against each owner's current options when the port's fast path does not apply, which is the case here.
 */
Fd bind_free_port(const SockAddr& local, SysError* err) {
  *err = SysError{};
  Fd fd(socket(local.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (!fd) {
    *err = {errno, Syscall::Socket};
    return Fd();
  }
  int one = 1;
  if (local.family() == AF_INET6 && setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
    *err = {errno, Syscall::Setsockopt};
    return Fd();
  }
  if (bind(fd.get(), local.sa(), local.len) != 0) {
    *err = {errno, Syscall::Bind};
    return Fd();
  }
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    *err = {errno, Syscall::Setsockopt};
    return Fd();
  }
  return fd;
}

}  // namespace

SysError probe_bind(const SockAddr& local, uint16_t* port) {
  Fd fd;
  return bind_reusable(local, port, &fd);
}

SysError reserve_port(const SockAddr& local, uint16_t* port, Fd* out) {
  if (local.port() != 0) return bind_reusable(local, port, out);
  SysError err;
  static const EphemeralRange range;
  // Any start will do (the ports are told to the peer anyway); std::random_device may throw, this cannot.
  static std::atomic<unsigned> cursor{
      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
      static_cast<unsigned>(getpid()) * 2654435761u};
  const unsigned span = range.hi - range.lo + 1;
  SockAddr a = local;
  for (unsigned tries = 0; tries < span && tries < 4096; tries++) {
    a.set_port(static_cast<uint16_t>(range.lo + cursor.fetch_add(1, std::memory_order_relaxed) % span));
    Fd fd = bind_free_port(a, &err);
    if (fd) {
      *port = a.port();
      *out = std::move(fd);
      return {};
    }
    if (err.err != EADDRINUSE) return err;
  }
  // Crowded range: the kernel's own search (slow, but it finds what is left).
  return bind_reusable(local, port, out);
}

}  // namespace onionpunch
