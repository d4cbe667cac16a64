// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vmtrace::isolate {

// What the join says of one memory access (docs/isolation.md):
//   guest          the running guest thread's process maps the page: VM, pid, tid, GPA, GVA known
//   guest_kernel   the CPU runs a vCPU of the page's VM and no guest process maps the GPA page
//                  (kernel memory, page cache, or a user mapping made before the trace)
//   shared_other   processes map the GPA page, but not the running thread's (candidates = how many)
//   host_on_behalf a VM's page touched by the host (CPU in host mode, or in guest mode of another VM):
//                  device emulation, vhost
//   host           no VM maps the host page
//   ambiguous      something the answer depends on changed within the clock-sync bound of the access:
//                  the fields keep the answer of the state at the access's time, candidates = 2
//   before_map     the CPU runs a vCPU but no VM maps the host page: a mapping older than the trace
//   guest_untraced the CPU runs a vCPU of the page's VM, no guest process is known to map the GPA page,
//                  and no event of that VM's guest trace has come yet (a guest still booting, a
//                  session started late, no guest trace given): whose page it is, nothing says
//   host_untraced  the host trace has ended (every stream of it): which VM maps the page and what
//                  each CPU runs, nothing says any more
enum class Attribution : std::uint8_t {
    guest,
    guest_kernel,
    shared_other,
    host_on_behalf,
    host,
    ambiguous,
    before_map,
    guest_untraced,
    host_untraced,  // last: the memory ground truth stores these codes
};
inline constexpr std::size_t kAttributionCount = 9;

// "guest", "guest-kernel", "shared-other", "host-on-behalf", "host", "ambiguous", "before-map",
// "guest-untraced", "host-untraced":
// views of string literals, so data() is NUL-terminated.
std::string_view to_string(Attribution attribution);

// One record of the memory tracer, its time already on the host's time base.
struct Access {
    std::int64_t time = 0;
    std::uint32_t cpu = 0;  // host CPU
    std::uint8_t size = 0;
    std::uint8_t kind = 0;  // 0 load, 1 store, 2 instruction fetch
    std::uint64_t hpa = 0;
    std::uint64_t user = 0;  // the caller's tag, handed back untouched (a message index, say)
};

struct Result {
    Attribution attribution = Attribution::host;
    std::uint16_t candidates = 0;       // shared_other: processes mapping the page; ambiguous: 2
    int vm = -1;                        // VM index (Join::vm_count()), -1: none
    std::uint64_t gpa = 0;              // page base + offset when the host map names a VM page, else 0
    std::uint64_t gva = 0;              // page base + offset when attribution == guest, else 0
    std::int32_t pid = -1;              // guest process of the thread running on the vCPU, -1: unknown
    std::int32_t tid = -1;              // guest thread running on the vCPU, -1: not in guest mode or unknown
    std::int32_t host_tid = -1;         // host thread current on the CPU, -1: unknown
    const std::string* comm = nullptr;  // the guest thread's comm; owned by the join, valid for its lifetime
};

}  // namespace vmtrace::isolate
