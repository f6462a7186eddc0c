{
  "targets": [
    {
      "target_name": "telegen_native",
      "sources": ["src/addon.cc", "src/socket_tracer.cc", "src/ring_reader.cc", "src/ring_map.cc", "src/bpf_object.cc", "src/map_fill.cc", "src/bpf_common.cc", "src/profile_tracer.cc", "src/uprobe_tracer.cc", "src/caps.cc", "src/privsep.cc", "src/heap.cc", "src/sock_diag.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../build/bpf",
        "../bpf/include",
        "../bpf"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wno-missing-field-initializers"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
