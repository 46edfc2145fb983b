// Socket setup for punch attempts: address parsing, reusable binds, TTL/hop limit, TCP_SYNCNT, non-blocking
// connect. Plain functions returning errno values (never exceptions), usable without Node.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "fd.h"

namespace onionpunch {

/** CLOCK_MONOTONIC in nanoseconds: the clock of every plan instant and of last_data_received_ns. */
int64_t monotonic_ns();

/** An IPv4 or IPv6 socket address. */
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;

  int family() const { return ss.ss_family; }
  uint16_t port() const;
  void set_port(uint16_t port);
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&ss); }
  /** Numeric address without the port ("10.0.0.1", "fd00::1"). */
  std::string address() const;
  bool operator==(const SockAddr& o) const;
};

/** Parses a numeric IPv4/IPv6 literal (IPv6 may carry a %scope). Returns false when it is not one. */
bool parse_addr(const std::string& text, uint16_t port, SockAddr* out);

/** Name of an errno value ("ECONNREFUSED"), or "E<number>" when unknown. */
const char* errno_name(int err);

/**
 * The system call behind a failure, as a number JS maps to a name (src/native/enums.ts mirrors this table;
 * test/native/enums.test.ts compares the two through the addon's `enums` export). Append only.
 */
enum class Syscall : uint8_t {
  None = 0,
  Socket,
  Setsockopt,
  Bind,
  Connect,
  Getsockname,
  Getpeername,
  EpollCtl,
  EpollCreate,
  TimerfdCreate,
  Eventfd,
  EpollWait,
  Sendmsg,
  Splice,
  Pipe,
  Shutdown,
  Fcntl,
  Write,
  Dup,
  kCount,
};

/** The names of Syscall, index = value ("" for None): Node's `syscall` spelling. */
inline constexpr const char* kSyscallNames[] = {
    "",         "socket",        "setsockopt",     "bind",    "connect", "getsockname",
    "getpeername", "epoll_ctl", "epoll_create1", "timerfd_create", "eventfd", "epoll_wait", "sendmsg",
    "splice", "pipe2", "shutdown", "fcntl", "write", "dup",
};
static_assert(sizeof kSyscallNames / sizeof kSyscallNames[0] == static_cast<size_t>(Syscall::kCount),
              "kSyscallNames must name every Syscall");

/** A failure: errno and the syscall that produced it. */
struct SysError {
  int err = 0;
  Syscall syscall = Syscall::None;
  explicit operator bool() const { return err != 0; }
};

struct SocketOptions {
  int ttl = 0;       // IP_TTL / IPV6_UNICAST_HOPS for the first SYN; 0 = system default
  int syn_cnt = 0;   // TCP_SYNCNT; 0 = system default
  bool no_delay = true;
};

/**
 * A non-blocking TCP socket with SO_REUSEADDR + SO_REUSEPORT bound to `local` (port 0 = any).
 * IPv6 sockets are V6ONLY so an IPv4 attempt on the same port never clashes with them.
 */
Fd open_bound_socket(const SockAddr& local, const SocketOptions& opt, SysError* err);

/**
 * A non-blocking TCP socket bound to `local`'s address with IP_BIND_ADDRESS_NO_PORT (port ignored): the
 * kernel picks a free ephemeral port at connect(), unique per 4-tuple, so many of them can reach one remote
 * from distinct ports without the bind(0) search (no SO_REUSEADDR/SO_REUSEPORT: the port is never shared).
 */
Fd open_ephemeral_socket(const SockAddr& local, const SocketOptions& opt, SysError* err);

/** Starts a non-blocking connect. Returns 0 when in progress or connected at once, else the errno. */
int start_connect(int fd, const SockAddr& remote);

/** Sets the unicast TTL / hop limit; -1 restores the system default. */
int set_ttl(int fd, int family, int ttl);

/** The pending error of a socket (SO_ERROR), 0 if none. */
int socket_error(int fd);

/**
 * The TCP state of a socket (TCP_INFO tcpi_state: TCP_SYN_SENT, TCP_SYN_RECV, ...), -1 if unknown. With
 * `retransmissions`, also the segments the kernel has re-sent on it (tcpi_total_retrans: for a handshaking socket,
 * its SYN or SYN-ACK on the kernel's own timer; -1 if unknown), from the same TCP_INFO read.
 */
int tcp_state(int fd, int* retransmissions = nullptr);
/**
 * When a TCP socket last received data, on monotonic_ns()'s clock: now minus TCP_INFO tcpi_last_data_recv, which
 * the kernel keeps in jiffies (so it is off by up to one tick either way, 4 ms at HZ=250). -1 for a descriptor
 * that is not a TCP socket. Before any data it is the handshake's time.
 */
int64_t last_data_received_ns(int fd);
/**
 * Puts a socket in TCP repair mode so that its close() sends nothing (no FIN, no RST) and frees the 4-tuple at
 * once. Needs CAP_NET_ADMIN in the socket's network namespace; false (errno set) without it.
 */
bool make_silent(int fd);

/**
 * Makes the peer repeat its last ACK: sends, from a raw socket, a bare ACK one sequence number behind what the TCP
 * socket `fd` (connected to `remote`) has sent. Any TCP state of the peer drops it and answers with an ACK of its
 * current numbers, which is what a SYN_RECV socket whose handshake's final ACK was lost is waiting for; nothing
 * of the connection changes (no new ISN). Needs CAP_NET_ADMIN (TCP_REPAIR, to read the sequence numbers) and
 * CAP_NET_RAW. Returns 0 or the errno (EPERM without the privileges).
 */
int send_ack_probe(int fd, const SockAddr& remote);
SysError local_name(int fd, SockAddr* out);
SysError peer_name(int fd, SockAddr* out);

/** Raises RLIMIT_NOFILE (soft, and hard when permitted) to at least `want`. Returns the new soft limit. */
long raise_fd_limit(long want);

/** Binds a reusable socket to `local` and returns the port the kernel gave it (then closes it). */
SysError probe_bind(const SockAddr& local, uint16_t* port);

/**
 * A punch port held by a bound, reusable socket, handed to `out` (docs/ENGINE.md "Local ports"). Port 0:
 * a cursor over this namespace's ephemeral range takes the next port no socket uses at all, not even a
 * TIME_WAIT one (bind(port 0) would search linearly and, with thousands of such ports, spend most of a busy
 * process's CPU in the kernel); after 4096 misses the kernel searches. Another port: that one, reusably.
 */
SysError reserve_port(const SockAddr& local, uint16_t* port, Fd* out);

}  // namespace onionpunch
