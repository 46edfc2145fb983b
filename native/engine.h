// The punch engine core: one thread, one epoll loop, timerfd deadlines on CLOCK_MONOTONIC, and many punch
// plans at once. Pure C++ (no Node): the N-API glue in addon.cc feeds it plans and drains its outcomes, and
// the sanitizer test drives it directly.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fd.h"
#include "sock.h"

namespace onionpunch {

enum class Profile : uint8_t { Plain = 0, Prime = 1, kCount };
inline constexpr const char* kProfileNames[] = {"plain", "prime"};
static_assert(sizeof kProfileNames / sizeof kProfileNames[0] == static_cast<size_t>(Profile::kCount),
              "kProfileNames must name every Profile");

/**
 * Where a plan's attempt sockets leave from. Shared: every attempt binds the plan's one local port
 * (SO_REUSEADDR + SO_REUSEPORT), the easy side of a spray. Distinct: every attempt gets its own ephemeral
 * port at connect() (IP_BIND_ADDRESS_NO_PORT, no reuse), the hard side of a spray: N sockets from N local
 * ports to one remote, each a fresh mapping on an endpoint-dependent NAT.
 */
enum class PortMode : uint8_t { Shared = 0, Distinct = 1, kCount };
inline constexpr const char* kPortModeNames[] = {"shared", "distinct"};
static_assert(sizeof kPortModeNames / sizeof kPortModeNames[0] == static_cast<size_t>(PortMode::kCount),
              "kPortModeNames must name every PortMode");

/** The stall re-send interval doubles up to this (the kernel's own first SYN retransmission comes at 1 s). */
inline constexpr int64_t kMaxStallNs = 1'000'000'000;

/** ACK probes per attempt socket, and their least spacing: the peer's TCP answers one segment below its window
 * per tcp_invalid_ratelimit (500 ms by default) and ignores the rest. */
inline constexpr uint32_t kMaxAckProbes = 4;
inline constexpr int64_t kAckProbeSpacingNs = 600'000'000;

/** At most this many attempts (remotes) per plan: the timeline's remote index is an int16_t. */
inline constexpr size_t kMaxAttempts = 16384;

/** Everything the engine needs to run one punch plan. Times are absolute CLOCK_MONOTONIC ns. */
struct PlanSpec {
  SockAddr local;                    // port 0 = let the kernel choose once; every attempt then reuses it
  std::vector<SockAddr> remotes;     // raced candidates, same family as local
  int64_t start_ns = 0;
  std::vector<int64_t> waves_ns{0};  // offsets from start, ascending
  int64_t resyn_ns = 20'000'000;     // re-create a failed attempt on this grid within a wave; 0 = never
  // A SYN still unanswered (the socket still in SYN_SENT: neither the peer's SYN nor its SYN-ACK arrived) after
  // this long is re-sent from a fresh socket, then after twice that, ... (at most kMaxStallNs apart), instead of
  // waiting for the kernel's 1 s retransmission. Only SYN_SENT sockets: one that got the peer's SYN (SYN_RECV)
  // is past the point where a new ISN is harmless. 0 = leave it to the kernel.
  int64_t stall_ns = 0;
  // With stall_ns: the stall timer reports (Engine::take_stalls) instead of re-sending; the caller asks the peer,
  // whose answer comes back as nudge(). A fresh ISN is then sent only by the side that knows it is safe.
  bool stall_report = false;
  // Every ack_probe_ns from its SYN an attempt socket is checked; one found in SYN_RECV at two checks in a row
  // has had the peer's SYN, sent its SYN-ACK and still waits for the handshake's final ACK. When that ACK is lost
  // the kernel re-sends the SYN-ACK only on its SYN timer (1 s, 3 s after the SYN), while the peer is already
  // established. An ACK probe (sock.h send_ack_probe) makes the peer repeat it now, with no new ISN; at most
  // kMaxAckProbes per socket, kAckProbeSpacingNs apart. Needs CAP_NET_ADMIN + CAP_NET_RAW (else one
  // `ack-probe` event with the errno and the kernel's timer). 0 = off.
  int64_t ack_probe_ns = 0;
  Profile profile = Profile::Plain;
  int prime_ttl = 2;
  int64_t prime_delay_ns = 100'000'000;
  int first_syn_ttl = 0;             // plain profile: TTL of each socket's first SYN, then the default
  bool retry_on_refused = true;      // false: any failure takes the candidate out (ordinary connect)
  int syn_cnt = 0;                   // TCP_SYNCNT, 0 = default
  bool no_delay = true;              // TCP_NODELAY on the sockets
  int64_t deadline_ns = 0;           // absolute; the plan ends with Timeout then
  PortMode port_mode = PortMode::Shared;
  // Pacing: within each wave, attempt r of n sends its SYN at wave + spread_ns * r / n (0 = all at once).
  // A spray of thousands of SYNs in a millisecond can overflow a small router's conntrack table.
  int64_t spread_ns = 0;
  // Spray follower (in a session: A, whichever side is hard; docs/ENGINE.md "Spray: one connection for
  // both sides").
  // 0 = the first established connection wins. > 0: every connection that establishes is kept and no new SYN
  // is sent; the plan wins with the one connection still alive once none has established or died for
  // max(settle_ns, 2 x its RTT) (at most 4 x settle_ns), or at once with one the peer sent data on. The
  // leader (reset_losers) keeps its first and resets the others, so the survivor is the leader's choice.
  // Bounded: kMaxCollectNs after the first establishment, or at the deadline, the earliest alive one wins.
  int64_t settle_ns = 0;
  // Close every losing socket with RST (SO_LINGER 0) rather than FIN: the leader's way of telling the follower
  // which connections it dropped, at once.
  bool reset_losers = false;
};

/** A spray follower collects for at most this long after its first connection established. */
inline constexpr int64_t kMaxCollectNs = 1'000'000'000;

// The enums JS sees as numbers carry a name table each (index = value), exported by the addon as `enums` and
// mirrored in src/native/enums.ts; test/native/enums.test.ts fails when the two disagree. Append only.

// Stall: a SYN_SENT socket got no answer within the plan's stall_ns and is about to be re-sent.
enum class EventKind : uint8_t {
  Syn = 0, Prime, Rst, Icmp, Error, Timeout, Established, Abort, Stall, Nudge, AckProbe, kCount
};
inline constexpr const char* kEventKindNames[] = {"syn",     "prime",       "rst",   "icmp",  "error",   "timeout",
                                                  "established", "abort", "stall", "nudge", "ack-probe"};
static_assert(sizeof kEventKindNames / sizeof kEventKindNames[0] == static_cast<size_t>(EventKind::kCount),
              "kEventKindNames must name every EventKind");

/** One timeline entry. target_ns < 0 means "no target" (reactive events). remote < 0 = plan-wide. */
struct TimelineEvent {
  EventKind kind;
  int16_t remote;
  int32_t err;
  int64_t target_ns;
  int64_t actual_ns;
};

enum class Status : uint8_t {
  Established = 0,
  Timeout,
  Aborted,
  Refused,      // every candidate failed with ECONNREFUSED and retries were off
  Unreachable,  // every candidate failed with another error and retries were off
  BindError,    // the local endpoint could not be bound
  SocketError,  // socket()/setsockopt() failed (EMFILE, ...)
  Stopped,      // the engine stopped before the plan ended
  LoopFailed,   // epoll_wait failed: the engine thread ended every plan and exited (err/syscall say why)
  kCount,
};
inline constexpr const char* kStatusNames[] = {"established", "timeout",      "aborted", "refused",    "unreachable",
                                               "bind-error",  "socket-error", "stopped", "loop-failed"};
static_assert(sizeof kStatusNames / sizeof kStatusNames[0] == static_cast<size_t>(Status::kCount),
              "kStatusNames must name every Status");

/** How a plan ended. Owns the winning socket until it is released to the caller. */
struct Outcome {
  uint64_t plan_id = 0;
  Status status = Status::Timeout;
  int err = 0;
  Syscall syscall = Syscall::None;  // the call behind `err`, None when there is none
  Fd fd;
  SockAddr local, remote;
  int remote_index = -1;
  std::vector<TimelineEvent> timeline;
  uint32_t attempts = 0;  // sockets that sent a SYN (prime SYNs included)
  int64_t started_ns = 0;
  int64_t established_ns = 0;
};

/** A stall-report plan's SYN went unanswered (its socket still in SYN_SENT) for its stall period. */
struct StallReport {
  uint64_t plan_id = 0;
  int remote = -1;
  int64_t at_ns = 0;
};

/** nudge(): which attempt states get a fresh SYN. */
enum class NudgeMode : uint8_t {
  Any = 0,      // SYN_SENT or SYN_RECV: the peer said it is still in SYN_SENT (holds none of our sequence numbers)
  RecvOnly,     // SYN_RECV only: the peer may hold our old ISN only if we are in SYN_SENT ourselves
  SentOnly,     // SYN_SENT only: both sides stalled, neither holds the other's sequence numbers
  kCount,
};
inline constexpr const char* kNudgeModeNames[] = {"any", "recv-only", "sent-only"};
static_assert(sizeof kNudgeModeNames / sizeof kNudgeModeNames[0] == static_cast<size_t>(NudgeMode::kCount),
              "kNudgeModeNames must name every NudgeMode");

/** At most this many nudges re-send per plan: what a peer can make us send on its word is small. */
inline constexpr uint32_t kMaxNudges = 2;

struct EngineStats {
  uint64_t plans = 0;          // in flight
  uint64_t sockets = 0;        // open attempt sockets
  uint64_t max_sockets = 0;    // high-water mark of open attempt sockets
  uint64_t syns = 0;           // SYNs sent (connect() calls) since start
  uint64_t plans_done = 0;
  bool realtime = false;       // the thread runs SCHED_FIFO
};

class Engine {
 public:
  /** `notify` runs on the engine thread when outcomes become available (or the engine stopped). */
  explicit Engine(std::function<void()> notify);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /**
   * Asks for SCHED_FIFO at `priority` (1-99) on the engine thread when it starts; 0 = normal scheduling.
   * Needs CAP_SYS_NICE; without it the thread silently stays SCHED_OTHER (see stats().realtime).
   */
  void set_realtime(int priority) { rt_priority_ = priority; }

  /**
   * Creates epoll/timerfd/eventfd and the thread, once per Engine (EALREADY after that: a stopped engine is
   * replaced, not restarted). Returns no error, or the errno and the call that failed.
   */
  SysError start();
  /** Asks the thread to end every plan (Stopped) and exit. Non-blocking. */
  void request_stop();
  /** Waits for the thread to exit (after request_stop). */
  void join();
  /** True once the thread has finished its last iteration (after a stop, or after epoll_wait failed). */
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }

  /** Queues a plan. Thread-safe. Returns its id (never 0). */
  uint64_t submit(PlanSpec spec);
  /** Ends a plan with Aborted (no-op if it already ended). Thread-safe. */
  void abort(uint64_t id);
  /**
   * The peer's stall report arrived (through the caller): every attempt of plan `id` still handshaking in a state
   * `mode` allows, whose SYN left at least stall_ns ago and which the kernel has not re-sent from (a re-sent SYN or
   * SYN-ACK may be answered by now), gets a fresh socket and SYN now (a SYN_RECV socket is closed silently first,
   * or left alone without CAP_NET_ADMIN), at most kMaxNudges times per plan. No-op unless the plan has
   * stall_report, or once it ended. Thread-safe.
   */
  void nudge(uint64_t id, NudgeMode mode);
  /**
   * Takes the outcomes (and, when `stalls` is given, the stall reports) produced so far, both under one lock: the
   * thread notifies only when both queues go from empty to not, so a caller that drained one queue and not the
   * other at the same instant could leave a report behind that no notify would ever announce again. Thread-safe.
   */
  std::vector<std::unique_ptr<Outcome>> take(std::vector<StallReport>* stalls = nullptr);
  EngineStats stats() const;

  /**
   * How long before a timer the thread stops sleeping and spins (precision vs CPU). 0 (default) = adaptive:
   * a bit more than the worst timerfd wakeup lateness seen recently, between kMinSpinNs and kMaxSpinNs.
   */
  void set_spin(int64_t ns) { fixed_spin_ns_ = ns; }
  static constexpr int64_t kMinSpinNs = 100'000;
  static constexpr int64_t kMaxSpinNs = 2'000'000;

 private:
  struct Impl;
  void run();
  void post(std::function<void(Impl&)> cmd);

  std::function<void()> notify_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  bool started_ = false;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> realtime_{false};
  int rt_priority_ = 0;
  int64_t fixed_spin_ns_ = 0;
  std::atomic<uint64_t> next_id_{1};

  std::mutex cmd_mu_;
  std::vector<std::function<void(Impl&)>> cmds_;
  std::mutex out_mu_;
  std::vector<std::unique_ptr<Outcome>> outs_;
  std::vector<StallReport> stalls_;  // under out_mu_
};

}  // namespace onionpunch
