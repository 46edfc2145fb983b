// onionpunch native addon: sockets, time and races only. Knows nothing about Bitcoin.
// N-API glue around the engine core (engine.h): plans in, outcomes out through a thread-safe function.
// No C++ exceptions cross this boundary (NAPI_DISABLE_CPP_EXCEPTIONS): bad input becomes a pending JS error.
#include <napi.h>

#include <algorithm>
#include <memory>
#include <string>

#include "engine.h"
#include "handoff.h"
#include "sock.h"
#include "splice.h"

#include <fcntl.h>

namespace {

/**
 * Calls the JS `wake` callback from a thread-safe function. node-addon-api's default call turns a failed
 * napi_call_function into a Napi::Error, and creating that error is itself fatal while a worker's environment is
 * being torn down (napi_define_properties fails: "FATAL ERROR: Error::Error"). A wake that cannot run is harmless:
 * the outcomes stay queued until drain() or the environment's cleanup hook, so the status is ignored.
 */
void CallWake(Napi::Env env, Napi::Function wake, void* /*context*/, void* /*data*/) {
  if (env == nullptr || wake.IsEmpty()) return;
  napi_value recv = nullptr;
  if (napi_get_undefined(env, &recv) != napi_ok) return;
  (void)napi_call_function(env, recv, wake, 0, nullptr, nullptr);
}

/** The wake-up channel from a loop thread to the JS thread: no payload, so nothing dangles if JS is gone. */
using WakeFn = Napi::TypedThreadSafeFunction<void, void, CallWake>;

using onionpunch::Engine;
using onionpunch::Outcome;
using onionpunch::PlanSpec;
using onionpunch::SockAddr;

// Monotonic clock in nanoseconds, as a BigInt: the engine schedules SYNs against this clock.
Napi::Value MonotonicNs(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), static_cast<int64_t>(onionpunch::monotonic_ns()));
}

Napi::Value ErrnoName(const Napi::CallbackInfo& info) {
  int e = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  return Napi::String::New(info.Env(), onionpunch::errno_name(e));
}

// A failed call as data: errno, its name and the Syscall enum value (JS names it through `enums.syscall`).
Napi::Object ErrorObject(Napi::Env env, int err, onionpunch::Syscall syscall) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("code", Napi::String::New(env, onionpunch::errno_name(err)));
  o.Set("syscall", Napi::Number::New(env, static_cast<int>(syscall)));
  return o;
}

template <size_t N>
Napi::Array NameTable(Napi::Env env, const char* const (&names)[N]) {
  Napi::Array a = Napi::Array::New(env, N);
  for (size_t i = 0; i < N; i++) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, names[i]));
  return a;
}

// The C++ enums JS receives as numbers, as name tables (index = value): the facade's mirrors in
// src/native/enums.ts are checked against these by test/native/enums.test.ts.
Napi::Object Enums(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", NameTable(env, onionpunch::kStatusNames));
  o.Set("eventKind", NameTable(env, onionpunch::kEventKindNames));
  o.Set("syscall", NameTable(env, onionpunch::kSyscallNames));
  o.Set("profile", NameTable(env, onionpunch::kProfileNames));
  o.Set("portMode", NameTable(env, onionpunch::kPortModeNames));
  o.Set("spliceEnd", NameTable(env, onionpunch::kSpliceEndNames));
  o.Set("nudgeMode", NameTable(env, onionpunch::kNudgeModeNames));
  return o;
}

bool ReadAddr(Napi::Env env, Napi::Value addr, Napi::Value port, SockAddr* out) {
  if (!addr.IsString() || !port.IsNumber()) {
    Napi::TypeError::New(env, "address must be a string and port a number").ThrowAsJavaScriptException();
    return false;
  }
  int32_t p = port.As<Napi::Number>().Int32Value();
  std::string a = addr.As<Napi::String>().Utf8Value();
  if (p < 0 || p > 65535 || !onionpunch::parse_addr(a, static_cast<uint16_t>(p), out)) {
    Napi::TypeError::New(env, "not an IPv4/IPv6 literal with a port 0-65535: " + a).ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// probeBind(address, port) -> {port} | {errno, code, syscall}: binds a reusable socket, reports the port.
Napi::Value ProbeBind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SockAddr local;
  if (!ReadAddr(env, info[0], info[1], &local)) return env.Undefined();
  uint16_t port = 0;
  onionpunch::SysError e = onionpunch::probe_bind(local, &port);
  if (e) return ErrorObject(env, e.err, e.syscall);
  Napi::Object o = Napi::Object::New(env);
  o.Set("port", Napi::Number::New(env, port));
  return o;
}

// reservePort(address, port) -> {port, fd} | {errno, code, syscall}: a port held by a bound socket (sock.h
// reserve_port); its descriptor goes to the caller, who closes it (PortReservation.release() in src/native/engine.ts).
Napi::Value ReservePort(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SockAddr local;
  if (!ReadAddr(env, info[0], info[1], &local)) return env.Undefined();
  uint16_t port = 0;
  onionpunch::Fd fd;
  onionpunch::SysError e = onionpunch::reserve_port(local, &port, &fd);
  if (e) return ErrorObject(env, e.err, e.syscall);
  Napi::Object o = Napi::Object::New(env);
  o.Set("port", Napi::Number::New(env, port));
  // JS owns the descriptor only once the object holding it exists (as for an outcome's fd): otherwise the Fd
  // here closes it and JS sees no `fd`.
  napi_value fdv = nullptr;
  if (!o.IsEmpty() && napi_create_int32(env, fd.get(), &fdv) == napi_ok &&
      napi_set_named_property(env, o, "fd", fdv) == napi_ok)
    fd.release();
  return o;
}

// sendFd(path, fd, meta: Buffer) -> {} | {errno, code, syscall}: hands a duplicate of `fd` with `meta` to the
// Unix socket at `path` (SCM_RIGHTS). Non-blocking; the caller still owns `fd`.
Napi::Value SendFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsNumber() || !info[2].IsBuffer()) {
    Napi::TypeError::New(env, "sendFd(path: string, fd: number, meta: Buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = info[1].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> meta = info[2].As<Napi::Buffer<uint8_t>>();
  onionpunch::SysError e = onionpunch::send_fd(path, fd, meta.Data(), meta.Length());
  if (e) return ErrorObject(env, e.err, e.syscall);
  return Napi::Object::New(env);
}

// lastDataReceivedNs(fd) -> bigint | -1n: when the TCP socket `fd` last received data (sock.h).
Napi::Value LastDataReceivedNs(const Napi::CallbackInfo& info) {
  int fd = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : -1;
  return Napi::BigInt::New(info.Env(), fd >= 0 ? onionpunch::last_data_received_ns(fd) : int64_t{-1});
}

Napi::Value RaiseFdLimit(const Napi::CallbackInfo& info) {
  double want = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
  return Napi::Number::New(info.Env(), static_cast<double>(onionpunch::raise_fd_limit(static_cast<long>(want))));
}

int64_t ReadI64(Napi::Value v, int64_t dflt) {
  if (v.IsBigInt()) {
    bool lossless = true;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  if (v.IsNumber()) return static_cast<int64_t>(v.As<Napi::Number>().DoubleValue());
  return dflt;
}

/** One native engine: a thread plus the thread-safe function that wakes JS when outcomes are ready. */
class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {InstanceMethod("submit", &EngineWrap::Submit), InstanceMethod("abort", &EngineWrap::Abort),
                        InstanceMethod("nudge", &EngineWrap::Nudge),
                        InstanceMethod("stop", &EngineWrap::Stop), InstanceMethod("drain", &EngineWrap::Drain),
                        InstanceMethod("stats", &EngineWrap::Stats)});
  }

  // new Engine(wake: () => void, {realtimePriority?, spinNs?}): `wake` runs on the JS thread whenever outcomes are
  // ready; it calls drain().
  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) {
      Napi::TypeError::New(env, "Engine(wake) needs a function").ThrowAsJavaScriptException();
      return;
    }
    tsfn_ = WakeFn::New(env, info[0].As<Napi::Function>(), "onionpunch-engine", 0, 1);
    tsfn_live_ = true;
    tsfn_.Unref(env);  // idle engines never keep the process alive
    engine_ = std::make_unique<Engine>([this] {
      // Engine thread. No payload: the JS side pulls with drain(), so nothing dangles if JS is gone.
      tsfn_.NonBlockingCall();
    });
    if (info[1].IsObject()) {
      Napi::Value rt = info[1].As<Napi::Object>().Get("realtimePriority");
      if (rt.IsNumber()) engine_->set_realtime(rt.As<Napi::Number>().Int32Value());
      Napi::Value spin = info[1].As<Napi::Object>().Get("spinNs");
      if (spin.IsNumber()) engine_->set_spin(spin.As<Napi::Number>().Int64Value());
    }
    onionpunch::SysError err = engine_->start();
    if (err) {
      // epoll/timerfd/eventfd creation failed (EMFILE, ENOMEM): the facade turns this into ENGINE_START.
      Shutdown();
      Napi::Error e = Napi::Error::New(env, std::string("engine start failed: ") + onionpunch::errno_name(err.err));
      e.Set("errno", Napi::Number::New(env, err.err));
      e.Set("code", Napi::String::New(env, onionpunch::errno_name(err.err)));
      e.Set("syscall", Napi::Number::New(env, static_cast<int>(err.syscall)));
      e.ThrowAsJavaScriptException();
      return;
    }
    // Registered after the TSFN so that it runs before the TSFN's own teardown (hooks run in reverse order).
    napi_add_env_cleanup_hook(env, &EngineWrap::Cleanup, this);
    hooked_ = true;
  }

  ~EngineWrap() override {
    Shutdown();
    if (hooked_) napi_remove_env_cleanup_hook(env_, &EngineWrap::Cleanup, this);
  }

 private:
  static void Cleanup(void* arg) {
    auto* self = static_cast<EngineWrap*>(arg);
    self->hooked_ = false;
    self->Shutdown();
  }

  /** Stops and joins the thread, drops undelivered outcomes (closing their fds), releases the TSFN. */
  void Shutdown() {
    if (engine_) {
      engine_->request_stop();
      engine_->join();
      engine_->take();
    }
    if (tsfn_live_) {
      tsfn_live_ = false;
      tsfn_.Release();
    }
  }

  void Hold(Napi::Env env) {
    if (!refd_ && tsfn_live_) {
      tsfn_.Ref(env);
      refd_ = true;
    }
  }

  void Unhold(Napi::Env env) {
    if (refd_ && tsfn_live_) {
      tsfn_.Unref(env);
      refd_ = false;
    }
  }

  // submit(plan) -> id (number)
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!engine_ || stopping_ || !tsfn_live_) {
      Napi::Error::New(env, "engine stopped").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!info[0].IsObject()) {
      Napi::TypeError::New(env, "submit(plan) needs an object").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Object o = info[0].As<Napi::Object>();
    PlanSpec s;
    if (!ReadAddr(env, o.Get("localAddress"), o.Get("localPort"), &s.local)) return env.Undefined();
    Napi::Value rv = o.Get("remotes");
    if (!rv.IsArray()) {
      Napi::TypeError::New(env, "remotes must be an array").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array ra = rv.As<Napi::Array>();
    for (uint32_t i = 0; i < ra.Length(); i++) {
      Napi::Value item = ra.Get(i);
      if (!item.IsObject()) {
        Napi::TypeError::New(env, "remote must be {address, port}").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Object r = item.As<Napi::Object>();
      SockAddr a;
      if (!ReadAddr(env, r.Get("address"), r.Get("port"), &a)) return env.Undefined();
      s.remotes.push_back(a);
    }
    s.start_ns = ReadI64(o.Get("startNs"), onionpunch::monotonic_ns());
    s.deadline_ns = ReadI64(o.Get("deadlineNs"), s.start_ns + 10'000'000'000LL);
    Napi::Value wv = o.Get("wavesNs");
    if (wv.IsArray()) {
      Napi::Array wa = wv.As<Napi::Array>();
      s.waves_ns.clear();
      for (uint32_t i = 0; i < wa.Length(); i++) s.waves_ns.push_back(ReadI64(wa.Get(i), 0));
    }
    s.resyn_ns = ReadI64(o.Get("resynNs"), s.resyn_ns);
    s.stall_ns = std::max<int64_t>(0, ReadI64(o.Get("stallNs"), 0));
    s.ack_probe_ns = std::max<int64_t>(0, ReadI64(o.Get("ackProbeNs"), 0));
    Napi::Value sr = o.Get("stallReport");
    s.stall_report = sr.IsBoolean() && sr.As<Napi::Boolean>().Value();
    s.profile = ReadI64(o.Get("profile"), 0) == 1 ? onionpunch::Profile::Prime : onionpunch::Profile::Plain;
    s.prime_ttl = static_cast<int>(ReadI64(o.Get("primeTtl"), 2));
    s.prime_delay_ns = ReadI64(o.Get("primeDelayNs"), s.prime_delay_ns);
    s.first_syn_ttl = static_cast<int>(ReadI64(o.Get("firstSynTtl"), 0));
    Napi::Value retry = o.Get("retryOnRefused");
    s.retry_on_refused = retry.IsBoolean() ? retry.As<Napi::Boolean>().Value() : true;
    s.syn_cnt = static_cast<int>(ReadI64(o.Get("synCnt"), 0));
    Napi::Value nd = o.Get("noDelay");
    s.no_delay = nd.IsBoolean() ? nd.As<Napi::Boolean>().Value() : true;
    s.port_mode = ReadI64(o.Get("portMode"), 0) == 1 ? onionpunch::PortMode::Distinct : onionpunch::PortMode::Shared;
    s.spread_ns = std::max<int64_t>(0, ReadI64(o.Get("spreadNs"), 0));
    s.settle_ns = std::min<int64_t>(std::max<int64_t>(0, ReadI64(o.Get("settleNs"), 0)), onionpunch::kMaxCollectNs);
    Napi::Value rl = o.Get("resetLosers");
    s.reset_losers = rl.IsBoolean() && rl.As<Napi::Boolean>().Value();
    uint64_t id = engine_->submit(std::move(s));
    inflight_++;
    Hold(env);
    return Napi::Number::New(env, static_cast<double>(id));
  }

  Napi::Value Abort(const Napi::CallbackInfo& info) {
    if (engine_ && info[0].IsNumber())
      engine_->abort(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
    return info.Env().Undefined();
  }

  // nudge(id, mode): the peer reported a stall (NudgeMode index); see Engine::nudge.
  Napi::Value Nudge(const Napi::CallbackInfo& info) {
    if (engine_ && info[0].IsNumber() && info[1].IsNumber()) {
      int32_t m = info[1].As<Napi::Number>().Int32Value();
      if (m >= 0 && m < static_cast<int32_t>(onionpunch::NudgeMode::kCount))
        engine_->nudge(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()),
                       static_cast<onionpunch::NudgeMode>(m));
    }
    return info.Env().Undefined();
  }

  // stop(): asks the thread to end; the last wake() reports {stopped: true} from drain().
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (engine_ && !stopping_ && tsfn_live_) {
      stopping_ = true;
      Hold(env);  // keep the loop alive until the thread has said goodbye
      engine_->request_stop();
    }
    return env.Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    onionpunch::EngineStats s = engine_ ? engine_->stats() : onionpunch::EngineStats{};
    o.Set("plans", Napi::Number::New(env, static_cast<double>(s.plans)));
    o.Set("sockets", Napi::Number::New(env, static_cast<double>(s.sockets)));
    o.Set("maxSockets", Napi::Number::New(env, static_cast<double>(s.max_sockets)));
    o.Set("syns", Napi::Number::New(env, static_cast<double>(s.syns)));
    o.Set("plansDone", Napi::Number::New(env, static_cast<double>(s.plans_done)));
    o.Set("inFlight", Napi::Number::New(env, static_cast<double>(inflight_)));
    o.Set("realtime", Napi::Boolean::New(env, s.realtime));
    return o;
  }

  Napi::Object ToJs(Napi::Env env, Outcome& out) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", Napi::Number::New(env, static_cast<double>(out.plan_id)));
    o.Set("status", Napi::Number::New(env, static_cast<int>(out.status)));
    o.Set("errno", Napi::Number::New(env, out.err));
    o.Set("code", Napi::String::New(env, out.err ? onionpunch::errno_name(out.err) : ""));
    o.Set("syscall", Napi::Number::New(env, static_cast<int>(out.syscall)));
    o.Set("attempts", Napi::Number::New(env, out.attempts));
    o.Set("startedNs", Napi::BigInt::New(env, out.started_ns));
    o.Set("establishedNs", Napi::BigInt::New(env, out.established_ns));
    o.Set("remoteIndex", Napi::Number::New(env, out.remote_index));
    if (out.fd) {
      o.Set("localAddress", Napi::String::New(env, out.local.address()));
      o.Set("localPort", Napi::Number::New(env, out.local.port()));
      o.Set("remoteAddress", Napi::String::New(env, out.remote.address()));
      o.Set("remotePort", Napi::Number::New(env, out.remote.port()));
      // JS owns the descriptor only once the object holding it exists: in a worker being terminated every N-API
      // call fails (the throw is swallowed: NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS), and the Outcome's Fd then
      // closes it instead of leaking it.
      napi_value fdv = nullptr;
      if (!o.IsEmpty() && napi_create_int32(env, out.fd.get(), &fdv) == napi_ok &&
          napi_set_named_property(env, o, "fd", fdv) == napi_ok)
        out.fd.release();
    } else {
      o.Set("fd", Napi::Number::New(env, -1));
    }
    // Timeline rows of 5 int64: kind, remote, errno, target (-1 = none), actual.
    size_t n = out.timeline.size();
    Napi::BigInt64Array tl = Napi::BigInt64Array::New(env, n * 5);
    int64_t* d = tl.IsEmpty() ? nullptr : tl.Data();  // no array in a terminating env: nothing to fill
    for (size_t i = 0; d != nullptr && i < n; i++) {
      const auto& ev = out.timeline[i];
      d[i * 5 + 0] = static_cast<int64_t>(ev.kind);
      d[i * 5 + 1] = ev.remote;
      d[i * 5 + 2] = ev.err;
      d[i * 5 + 3] = ev.target_ns;
      d[i * 5 + 4] = ev.actual_ns;
    }
    o.Set("timeline", tl);
    return o;
  }

  // drain() -> {outcomes: object[], stalls: {id, remote, atNs}[], stopped: boolean}
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object res = Napi::Object::New(env);
    Napi::Array arr = Napi::Array::New(env);
    bool stopped = false;
    Napi::Array stalls = Napi::Array::New(env);
    if (engine_) {
      std::vector<onionpunch::StallReport> reports;
      auto outs = engine_->take(&reports);
      for (const auto& r : reports) {
        Napi::Object so = Napi::Object::New(env);
        so.Set("id", Napi::Number::New(env, static_cast<double>(r.plan_id)));
        so.Set("remote", Napi::Number::New(env, r.remote));
        so.Set("atNs", Napi::BigInt::New(env, r.at_ns));
        stalls.Set(stalls.Length(), so);
      }
      for (size_t i = 0; i < outs.size(); i++) arr.Set(static_cast<uint32_t>(i), ToJs(env, *outs[i]));
      inflight_ = outs.size() > inflight_ ? 0 : inflight_ - outs.size();
      stopped = engine_->stopped();
      if (stopped) {
        engine_->join();
        auto rest = engine_->take();  // whatever the thread added between the two takes
        for (size_t i = 0; i < rest.size(); i++)
          arr.Set(static_cast<uint32_t>(arr.Length()), ToJs(env, *rest[i]));
        inflight_ = 0;
        Unhold(env);
        if (tsfn_live_) {
          tsfn_live_ = false;
          tsfn_.Release();
        }
      } else if (inflight_ == 0 && !stopping_) {
        Unhold(env);
      }
    }
    res.Set("outcomes", arr);
    res.Set("stalls", stalls);
    res.Set("stopped", Napi::Boolean::New(env, stopped || !tsfn_live_));
    return res;
  }

  napi_env env_;
  std::unique_ptr<Engine> engine_;
  WakeFn tsfn_;
  bool tsfn_live_ = false;
  bool hooked_ = false;
  bool refd_ = false;
  bool stopping_ = false;
  size_t inflight_ = 0;
};

/**
 * The splice bridge thread (splice.h) for JS. add() duplicates the two descriptors it is given, so the caller
 * destroys its net.Sockets right after (close(2) of its copies: no FIN, the connections live on here). Results
 * are pulled with drain() when `wake` runs. The TSFN keeps the process alive while a bridge runs, as the two
 * sockets would.
 */
class SplicerWrap : public Napi::ObjectWrap<SplicerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Splicer",
                       {InstanceMethod("add", &SplicerWrap::Add), InstanceMethod("close", &SplicerWrap::Close),
                        InstanceMethod("drain", &SplicerWrap::Drain), InstanceMethod("stop", &SplicerWrap::Stop)});
  }

  // new Splicer(wake: () => void)
  explicit SplicerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SplicerWrap>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) {
      Napi::TypeError::New(env, "Splicer(wake) needs a function").ThrowAsJavaScriptException();
      return;
    }
    tsfn_ = WakeFn::New(env, info[0].As<Napi::Function>(), "onionpunch-splicer", 0, 1);
    tsfn_live_ = true;
    tsfn_.Unref(env);
    splicer_ = std::make_unique<onionpunch::Splicer>([this] { tsfn_.NonBlockingCall(); });
    onionpunch::SysError err = splicer_->start();
    if (err) {
      Shutdown();
      Napi::Error e = Napi::Error::New(env, std::string("splicer start failed: ") + onionpunch::errno_name(err.err));
      e.Set("errno", Napi::Number::New(env, err.err));
      e.Set("code", Napi::String::New(env, onionpunch::errno_name(err.err)));
      e.Set("syscall", Napi::Number::New(env, static_cast<int>(err.syscall)));
      e.ThrowAsJavaScriptException();
      return;
    }
    napi_add_env_cleanup_hook(env, &SplicerWrap::Cleanup, this);
    hooked_ = true;
  }

  ~SplicerWrap() override {
    Shutdown();
    if (hooked_) napi_remove_env_cleanup_hook(env_, &SplicerWrap::Cleanup, this);
  }

 private:
  static void Cleanup(void* arg) {
    auto* self = static_cast<SplicerWrap*>(arg);
    self->hooked_ = false;
    self->Shutdown();
  }

  /** Stops and joins the thread (every bridge closed), releases the TSFN. */
  void Shutdown() {
    if (splicer_) splicer_->stop();
    if (tsfn_live_) {
      tsfn_live_ = false;
      tsfn_.Release();
    }
  }

  static bool ReadHead(Napi::Value v, std::vector<uint8_t>* out) {
    if (v.IsUndefined() || v.IsNull()) return true;
    if (!v.IsBuffer()) return false;
    Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
    out->assign(b.Data(), b.Data() + b.Length());
    return true;
  }

  // add(fdA, fdB, headA?: Buffer, headB?: Buffer, idleMs: number) -> id | {errno, code, syscall}
  Napi::Value Add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!splicer_ || !tsfn_live_) {
      Napi::Error::New(env, "splicer stopped").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    onionpunch::SpliceSpec spec;
    if (!info[0].IsNumber() || !info[1].IsNumber() || !ReadHead(info[2], &spec.a_pending) ||
        !ReadHead(info[3], &spec.b_pending) || !info[4].IsNumber()) {
      Napi::TypeError::New(env, "add(fdA, fdB, headA?, headB?, idleMs)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    for (int i = 0; i < 2; i++) {
      int fd = info[i].As<Napi::Number>().Int32Value();
      onionpunch::Fd dup(fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1);
      if (!dup) return ErrorObject(env, fd >= 0 ? errno : EBADF, onionpunch::Syscall::Dup);
      (i == 0 ? spec.a : spec.b) = std::move(dup);
    }
    spec.idle_ns = static_cast<int64_t>(info[4].As<Napi::Number>().DoubleValue() * 1e6);
    uint64_t id = splicer_->add(std::move(spec));
    if (running_++ == 0) tsfn_.Ref(env);
    return Napi::Number::New(env, static_cast<double>(id));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (splicer_ && info[0].IsNumber()) splicer_->close(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
    return info.Env().Undefined();
  }

  // drain() -> [{id, aToB, bToA, end, errno, code, syscall, onA}]
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array arr = Napi::Array::New(env);
    if (!splicer_) return arr;
    auto outs = splicer_->take();
    for (size_t i = 0; i < outs.size(); i++) {
      const auto& r = outs[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", Napi::Number::New(env, static_cast<double>(r.id)));
      o.Set("aToB", Napi::Number::New(env, static_cast<double>(r.a_to_b)));
      o.Set("bToA", Napi::Number::New(env, static_cast<double>(r.b_to_a)));
      o.Set("end", Napi::Number::New(env, static_cast<int>(r.end)));
      o.Set("errno", Napi::Number::New(env, r.err));
      o.Set("code", Napi::String::New(env, r.err ? onionpunch::errno_name(r.err) : ""));
      o.Set("syscall", Napi::Number::New(env, static_cast<int>(r.syscall)));
      o.Set("onA", Napi::Boolean::New(env, r.error_on_a));
      arr.Set(static_cast<uint32_t>(i), o);
    }
    running_ = outs.size() > running_ ? 0 : running_ - outs.size();
    if (running_ == 0 && tsfn_live_ && !outs.empty()) tsfn_.Unref(env);
    return arr;
  }

  // stop(): closes every bridge (their results come with the next drain()) and ends the thread.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (splicer_) splicer_->stop();
    return info.Env().Undefined();
  }

  napi_env env_;
  std::unique_ptr<onionpunch::Splicer> splicer_;
  WakeFn tsfn_;
  bool tsfn_live_ = false;
  bool hooked_ = false;
  size_t running_ = 0;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("monotonicNs", Napi::Function::New(env, MonotonicNs, "monotonicNs"));
  exports.Set("errnoName", Napi::Function::New(env, ErrnoName, "errnoName"));
  exports.Set("probeBind", Napi::Function::New(env, ProbeBind, "probeBind"));
  exports.Set("reservePort", Napi::Function::New(env, ReservePort, "reservePort"));
  exports.Set("lastDataReceivedNs", Napi::Function::New(env, LastDataReceivedNs, "lastDataReceivedNs"));
  exports.Set("raiseFdLimit", Napi::Function::New(env, RaiseFdLimit, "raiseFdLimit"));
  exports.Set("sendFd", Napi::Function::New(env, SendFd, "sendFd"));
  exports.Set("Engine", EngineWrap::Define(env));
  exports.Set("Splicer", SplicerWrap::Define(env));
  exports.Set("enums", Enums(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(onionpunch_native, Init)
