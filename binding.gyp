{
  "targets": [
    {
      "target_name": "onionpunch_native",
      "sources": [
        "native/addon.cc",
        "native/engine.cc",
        "native/handoff.cc",
        "native/splice.cc",
        "native/sock.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-pthread"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["OS!='linux'", {"sources!": ["native/addon.cc", "native/engine.cc", "native/handoff.cc", "native/sock.cc", "native/splice.cc"]}]
      ]
    },
    {
      "target_name": "onionpunch_delayline",
      "type": "executable",
      "sources": ["native/tools/delayline.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "conditions": [
        ["OS!='linux'", {"sources!": ["native/tools/delayline.c"]}]
      ]
    }
  ]
}
