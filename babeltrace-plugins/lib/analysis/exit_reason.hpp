// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <string>

namespace vmtrace::analysis {

// kvm_x86_exit.isa
inline constexpr std::uint32_t kIsaVmx = 1;
inline constexpr std::uint32_t kIsaSvm = 2;

// What an exit means for the non-deterministic event log: the access it
// stands for when KVM's own handler events are not in the trace, and the
// instructions whose result the hypervisor chooses (RDTSC, RDTSCP, RDPRU,
// RDRAND, RDSEED) when it intercepts them.
enum class ExitClass : std::uint8_t { other, pio, msr, hypercall, value_instruction };

// The name of an exit reason ("NPF", "EPT_VIOLATION", "0x123" when unknown),
// as the kernel's svm/vmx exit-reason tables name them.
std::string exit_reason_name(std::uint32_t isa, std::uint32_t reason);

ExitClass classify_exit(std::uint32_t isa, std::uint32_t reason);

// The port I/O an exit describes (SVM EXITINFO1, VMX exit qualification).
struct PortAccess {
    std::uint32_t port = 0;
    bool in = false;
    unsigned size = 0;
    bool string = false;  // INS/OUTS (with or without REP)
};
PortAccess decode_port_exit(std::uint32_t isa, std::uint64_t info1);

// 1 when the MSR exit writes the MSR.
bool msr_exit_is_write(std::uint32_t isa, std::uint32_t reason, std::uint64_t info1);

}  // namespace vmtrace::analysis
