// Kernel-speed bridging of two connected TCP sockets: splice(2) through a pipe per direction, on one thread
// with its own epoll loop (never Node's). Pure C++ (no Node): addon.cc glues it to JS, the sanitizer test
// drives it directly. Sockets and time only: the bytes are never looked at.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "fd.h"
#include "sock.h"

namespace onionpunch {

enum class SpliceEnd : uint8_t { Done = 0, Idle, Error, Closed, Stopped, kCount };
inline constexpr const char* kSpliceEndNames[] = {"done", "idle", "error", "closed", "stopped"};
static_assert(sizeof kSpliceEndNames / sizeof kSpliceEndNames[0] == static_cast<size_t>(SpliceEnd::kCount),
              "kSpliceEndNames must name every SpliceEnd");

/** How one bridge ended. */
struct SpliceResult {
  uint64_t id = 0;
  uint64_t a_to_b = 0;  // bytes delivered to b that came from a (prefix included)
  uint64_t b_to_a = 0;
  SpliceEnd end = SpliceEnd::Done;
  int err = 0;          // errno behind Error
  Syscall syscall = Syscall::None;
  bool error_on_a = false;  // which socket the error came from
};

/** What add() needs: two connected stream sockets (the splicer takes ownership) and what JS had already read. */
struct SpliceSpec {
  Fd a, b;
  std::vector<uint8_t> a_pending;  // read from a before the hand-off: written to b first
  std::vector<uint8_t> b_pending;  // read from b before the hand-off: written to a first
  int64_t idle_ns = 30LL * 60 * 1'000'000'000;  // both sockets closed after this long without a byte
};

/**
 * The bridging thread. A direction moves bytes socket → pipe → socket with splice(2) (the payload never
 * enters user space); its EOF becomes shutdown(SHUT_WR) on the other socket once the pipe is drained (half-
 * close carried across), and the bridge ends when both directions have. An error on either socket (reset,
 * EPIPE) closes both. Each bridge owns its two sockets and two pipes (RAII): ending it closes all four.
 */
class Splicer {
 public:
  /** `notify` runs on the splicer thread when results become available. */
  explicit Splicer(std::function<void()> notify);
  ~Splicer();
  Splicer(const Splicer&) = delete;
  Splicer& operator=(const Splicer&) = delete;

  /** Creates epoll/eventfd and the thread. Returns no error, or errno and the call that failed. */
  SysError start();
  /** Takes the sockets. Thread-safe. Returns the bridge id (never 0). */
  uint64_t add(SpliceSpec spec);
  /** Ends a bridge now (Closed): both sockets closed. No-op once it ended. Thread-safe. */
  void close(uint64_t id);
  /** Ends every bridge (Stopped) and stops the thread; joins it. */
  void stop();
  /** Results so far. Thread-safe. */
  std::vector<SpliceResult> take();
  /** Bridges running. */
  uint64_t active() const { return active_.load(std::memory_order_relaxed); }

  /** Bytes one splice(2) call moves at most (also the pipe size asked for). */
  static constexpr size_t kChunk = 256 * 1024;

 private:
  struct Impl;
  void run();
  void post(std::function<void(Impl&)> cmd);

  std::function<void()> notify_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> active_{0};
  std::mutex cmd_mu_;
  std::vector<std::function<void(Impl&)>> cmds_;
  std::mutex out_mu_;
  std::vector<SpliceResult> outs_;
};

}  // namespace onionpunch
