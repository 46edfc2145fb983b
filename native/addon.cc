// onionpunch native addon: sockets, time and races only. Knows nothing about Bitcoin.
#include <napi.h>
#include <time.h>

namespace {

// Monotonic clock in nanoseconds, as a BigInt: the engine schedules SYNs against this clock.
Napi::Value MonotonicNs(const Napi::CallbackInfo& info) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  return Napi::BigInt::New(info.Env(), ns);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("monotonicNs", Napi::Function::New(env, MonotonicNs, "monotonicNs"));
  return exports;
}

}  // namespace

NODE_API_MODULE(onionpunch_native, Init)
