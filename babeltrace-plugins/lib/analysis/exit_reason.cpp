// SPDX-License-Identifier: MIT
#include "exit_reason.hpp"

#include <fmt/format.h>

#include <array>
#include <utility>

namespace vmtrace::analysis {
namespace {

// AMD APM vol. 2, appendix C (the kernel's SVM_EXIT_REASONS).
constexpr std::pair<std::uint32_t, const char*> kSvm[] = {
    {0x060, "INTR"},
    {0x061, "NMI"},
    {0x062, "SMI"},
    {0x063, "INIT"},
    {0x064, "VINTR"},
    {0x065, "CR0_SEL_WRITE"},
    {0x06e, "RDTSC"},
    {0x06f, "RDPMC"},
    {0x070, "PUSHF"},
    {0x071, "POPF"},
    {0x072, "CPUID"},
    {0x073, "RSM"},
    {0x074, "IRET"},
    {0x075, "SWINT"},
    {0x076, "INVD"},
    {0x077, "PAUSE"},
    {0x078, "HLT"},
    {0x079, "INVLPG"},
    {0x07a, "INVLPGA"},
    {0x07b, "IOIO"},
    {0x07c, "MSR"},
    {0x07d, "TASK_SWITCH"},
    {0x07e, "FERR_FREEZE"},
    {0x07f, "SHUTDOWN"},
    {0x080, "VMRUN"},
    {0x081, "VMMCALL"},
    {0x082, "VMLOAD"},
    {0x083, "VMSAVE"},
    {0x084, "STGI"},
    {0x085, "CLGI"},
    {0x086, "SKINIT"},
    {0x087, "RDTSCP"},
    {0x088, "ICEBP"},
    {0x089, "WBINVD"},
    {0x08a, "MONITOR"},
    {0x08b, "MWAIT"},
    {0x08c, "MWAIT_COND"},
    {0x08d, "XSETBV"},
    {0x08e, "RDPRU"},
    {0x08f, "EFER_WRITE_TRAP"},
    {0x0a5, "INVPCID"},
    {0x400, "NPF"},
    {0x401, "AVIC_INCOMPLETE_IPI"},
    {0x402, "AVIC_UNACCELERATED_ACCESS"},
    {0x403, "VMGEXIT"},
    {0xffffffff, "ERR"},
};

// Intel SDM vol. 3, appendix C (the kernel's VMX_EXIT_REASONS).
constexpr std::pair<std::uint32_t, const char*> kVmx[] = {
    {0, "EXCEPTION_NMI"},
    {1, "EXTERNAL_INTERRUPT"},
    {2, "TRIPLE_FAULT"},
    {3, "INIT_SIGNAL"},
    {4, "SIPI_SIGNAL"},
    {7, "INTERRUPT_WINDOW"},
    {8, "NMI_WINDOW"},
    {9, "TASK_SWITCH"},
    {10, "CPUID"},
    {12, "HLT"},
    {13, "INVD"},
    {14, "INVLPG"},
    {15, "RDPMC"},
    {16, "RDTSC"},
    {18, "VMCALL"},
    {19, "VMCLEAR"},
    {20, "VMLAUNCH"},
    {21, "VMPTRLD"},
    {22, "VMPTRST"},
    {23, "VMREAD"},
    {24, "VMRESUME"},
    {25, "VMWRITE"},
    {26, "VMOFF"},
    {27, "VMON"},
    {28, "CR_ACCESS"},
    {29, "DR_ACCESS"},
    {30, "IO_INSTRUCTION"},
    {31, "MSR_READ"},
    {32, "MSR_WRITE"},
    {33, "INVALID_STATE"},
    {34, "MSR_LOAD_FAIL"},
    {36, "MWAIT_INSTRUCTION"},
    {37, "MONITOR_TRAP_FLAG"},
    {39, "MONITOR_INSTRUCTION"},
    {40, "PAUSE_INSTRUCTION"},
    {41, "MCE_DURING_VMENTRY"},
    {43, "TPR_BELOW_THRESHOLD"},
    {44, "APIC_ACCESS"},
    {45, "EOI_INDUCED"},
    {46, "GDTR_IDTR"},
    {47, "LDTR_TR"},
    {48, "EPT_VIOLATION"},
    {49, "EPT_MISCONFIG"},
    {50, "INVEPT"},
    {51, "RDTSCP"},
    {52, "PREEMPTION_TIMER"},
    {53, "INVVPID"},
    {54, "WBINVD"},
    {55, "XSETBV"},
    {56, "APIC_WRITE"},
    {57, "RDRAND"},
    {58, "INVPCID"},
    {59, "VMFUNC"},
    {60, "ENCLS"},
    {61, "RDSEED"},
    {62, "PML_FULL"},
    {63, "XSAVES"},
    {64, "XRSTORS"},
    {67, "UMWAIT"},
    {68, "TPAUSE"},
    {74, "BUS_LOCK"},
    {75, "NOTIFY"},
};

template <std::size_t N>
const char* find(const std::pair<std::uint32_t, const char*> (&table)[N], std::uint32_t reason) {
    for (const auto& [code, name] : table) {
        if (code == reason) {
            return name;
        }
    }
    return nullptr;
}

}  // namespace

std::string exit_reason_name(std::uint32_t isa, std::uint32_t reason) {
    if (isa == kIsaSvm) {
        if (const char* name = find(kSvm, reason)) {
            return name;
        }
        if (reason <= 0x0f) {
            return fmt::format("READ_CR{}", reason);
        }
        if (reason <= 0x1f) {
            return fmt::format("WRITE_CR{}", reason - 0x10);
        }
        if (reason <= 0x2f) {
            return fmt::format("READ_DR{}", reason - 0x20);
        }
        if (reason <= 0x3f) {
            return fmt::format("WRITE_DR{}", reason - 0x30);
        }
        if (reason <= 0x5f) {
            return fmt::format("EXCP_{}", reason - 0x40);
        }
    } else if (isa == kIsaVmx) {
        if (const char* name = find(kVmx, reason & 0xffff)) {
            return name;
        }
    }
    return fmt::format("{:#x}", reason);
}

ExitClass classify_exit(std::uint32_t isa, std::uint32_t reason) {
    if (isa == kIsaSvm) {
        switch (reason) {
        case 0x07b:
            return ExitClass::pio;
        case 0x07c:
            return ExitClass::msr;
        case 0x081:
            return ExitClass::hypercall;
        case 0x06e:  // RDTSC
        case 0x087:  // RDTSCP
        case 0x08e:  // RDPRU
            return ExitClass::value_instruction;
        default:
            return ExitClass::other;
        }
    }
    if (isa == kIsaVmx) {
        switch (reason & 0xffff) {
        case 30:
            return ExitClass::pio;
        case 31:
        case 32:
            return ExitClass::msr;
        case 18:
            return ExitClass::hypercall;
        case 16:  // RDTSC
        case 51:  // RDTSCP
        case 57:  // RDRAND
        case 61:  // RDSEED
            return ExitClass::value_instruction;
        default:
            return ExitClass::other;
        }
    }
    return ExitClass::other;
}

PortAccess decode_port_exit(std::uint32_t isa, std::uint64_t info1) {
    PortAccess access;
    if (isa == kIsaSvm) {
        // EXITINFO1: bit 0 type (1 = in), bits 4..6 SZ8/SZ16/SZ32, 31..16 port
        access.in = (info1 & 1) != 0;
        access.size = (info1 & 0x10) != 0 ? 1 : (info1 & 0x20) != 0 ? 2 : (info1 & 0x40) != 0 ? 4 : 0;
        access.port = static_cast<std::uint32_t>((info1 >> 16) & 0xffff);
        access.string = (info1 & 4) != 0;  // STR
    } else {
        // exit qualification: bits 2..0 size - 1, bit 3 direction (1 = in), 31..16 port
        access.size = static_cast<unsigned>((info1 & 7) + 1);
        access.in = (info1 & 8) != 0;
        access.string = (info1 & 0x10) != 0;
        access.port = static_cast<std::uint32_t>((info1 >> 16) & 0xffff);
    }
    return access;
}

bool msr_exit_is_write(std::uint32_t isa, std::uint32_t reason, std::uint64_t info1) {
    if (isa == kIsaSvm) {
        return (info1 & 1) != 0;
    }
    return (reason & 0xffff) == 32;
}

}  // namespace vmtrace::analysis
