// SPDX-License-Identifier: MIT
#include "lib/analysis/exit_reason.hpp"

#include <gtest/gtest.h>

namespace vmtrace::analysis {
namespace {

TEST(ExitReason, NamesSvmCodes) {
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x400), "NPF");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x078), "HLT");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x07b), "IOIO");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x07c), "MSR");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x081), "VMMCALL");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x060), "INTR");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x403), "VMGEXIT");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0xffffffff), "ERR");
    // the ranges
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x000), "READ_CR0");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x013), "WRITE_CR3");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x027), "READ_DR7");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x03f), "WRITE_DR15");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x04e), "EXCP_14");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x05f), "EXCP_31");
}

TEST(ExitReason, NamesVmxCodes) {
    EXPECT_EQ(exit_reason_name(kIsaVmx, 0), "EXCEPTION_NMI");
    EXPECT_EQ(exit_reason_name(kIsaVmx, 12), "HLT");
    EXPECT_EQ(exit_reason_name(kIsaVmx, 30), "IO_INSTRUCTION");
    EXPECT_EQ(exit_reason_name(kIsaVmx, 31), "MSR_READ");
    EXPECT_EQ(exit_reason_name(kIsaVmx, 32), "MSR_WRITE");
    EXPECT_EQ(exit_reason_name(kIsaVmx, 48), "EPT_VIOLATION");
    EXPECT_EQ(exit_reason_name(kIsaVmx, 75), "NOTIFY");
    // bit 31, the VM-entry failure flag, does not change the basic reason
    EXPECT_EQ(exit_reason_name(kIsaVmx, 0x80000021), "INVALID_STATE");
}

TEST(ExitReason, UnknownCodesInHex) {
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x090), "0x90");
    EXPECT_EQ(exit_reason_name(kIsaSvm, 0x500), "0x500");
    EXPECT_EQ(exit_reason_name(kIsaVmx, 100), "0x64");
    EXPECT_EQ(exit_reason_name(kIsaVmx, 5), "0x5");
    EXPECT_EQ(exit_reason_name(0, 0x400), "0x400");  // no ISA: no table
    EXPECT_EQ(exit_reason_name(7, 12), "0xc");
}

TEST(ExitReason, Classifies) {
    EXPECT_EQ(classify_exit(kIsaSvm, 0x07b), ExitClass::pio);
    EXPECT_EQ(classify_exit(kIsaSvm, 0x07c), ExitClass::msr);
    EXPECT_EQ(classify_exit(kIsaSvm, 0x081), ExitClass::hypercall);
    EXPECT_EQ(classify_exit(kIsaSvm, 0x400), ExitClass::other);
    EXPECT_EQ(classify_exit(kIsaSvm, 30), ExitClass::other);  // a VMX code on SVM
    EXPECT_EQ(classify_exit(kIsaVmx, 30), ExitClass::pio);
    EXPECT_EQ(classify_exit(kIsaVmx, 31), ExitClass::msr);
    EXPECT_EQ(classify_exit(kIsaVmx, 32), ExitClass::msr);
    EXPECT_EQ(classify_exit(kIsaVmx, 18), ExitClass::hypercall);
    EXPECT_EQ(classify_exit(kIsaVmx, 48), ExitClass::other);
    EXPECT_EQ(classify_exit(kIsaSvm, 0x06e), ExitClass::value_instruction);  // RDTSC
    EXPECT_EQ(classify_exit(kIsaVmx, 57), ExitClass::value_instruction);     // RDRAND
    EXPECT_EQ(classify_exit(0, 30), ExitClass::other);
}

TEST(ExitReason, DecodesSvmPortExits) {
    // EXITINFO1: bit 0 in, bit 4/5/6 one/two/four bytes, port in 31..16
    PortAccess a = decode_port_exit(kIsaSvm, (std::uint64_t{0x3f8} << 16) | 0x10 | 1);
    EXPECT_EQ(a.port, 0x3f8u);
    EXPECT_TRUE(a.in);
    EXPECT_EQ(a.size, 1u);
    a = decode_port_exit(kIsaSvm, (std::uint64_t{0xcfc} << 16) | 0x40);
    EXPECT_EQ(a.port, 0xcfcu);
    EXPECT_FALSE(a.in);
    EXPECT_EQ(a.size, 4u);
    a = decode_port_exit(kIsaSvm, (std::uint64_t{0x1f0} << 16) | 0x20 | 1 | (std::uint64_t{0xdead} << 32));
    EXPECT_EQ(a.port, 0x1f0u);  // bits above 31 are not the port's
    EXPECT_TRUE(a.in);
    EXPECT_EQ(a.size, 2u);
    EXPECT_FALSE(a.string);
    // rep insb from 0x511 (a lab recording's firmware)
    a = decode_port_exit(kIsaSvm, 0x511001d);
    EXPECT_EQ(a.port, 0x511u);
    EXPECT_TRUE(a.in);
    EXPECT_TRUE(a.string);
    EXPECT_EQ(a.size, 1u);
}

TEST(ExitReason, DecodesVmxPortExits) {
    // exit qualification: bits 2..0 size - 1, bit 3 in, port in 31..16
    PortAccess a = decode_port_exit(kIsaVmx, (std::uint64_t{0x60} << 16) | 8);
    EXPECT_EQ(a.port, 0x60u);
    EXPECT_TRUE(a.in);
    EXPECT_EQ(a.size, 1u);
    a = decode_port_exit(kIsaVmx, (std::uint64_t{0xcf8} << 16) | 3);
    EXPECT_EQ(a.port, 0xcf8u);
    EXPECT_FALSE(a.in);
    EXPECT_EQ(a.size, 4u);
    EXPECT_FALSE(a.string);
    EXPECT_TRUE(decode_port_exit(kIsaVmx, (std::uint64_t{0x1f0} << 16) | 0x10 | 8 | 1).string);
    a = decode_port_exit(kIsaVmx, (std::uint64_t{0x70} << 16) | 8 | 1);
    EXPECT_EQ(a.port, 0x70u);
    EXPECT_TRUE(a.in);
    EXPECT_EQ(a.size, 2u);
}

TEST(ExitReason, MsrExitDirection) {
    EXPECT_TRUE(msr_exit_is_write(kIsaSvm, 0x07c, 1));
    EXPECT_FALSE(msr_exit_is_write(kIsaSvm, 0x07c, 0));
    EXPECT_TRUE(msr_exit_is_write(kIsaVmx, 32, 0));
    EXPECT_FALSE(msr_exit_is_write(kIsaVmx, 31, 1));  // VMX: the reason says it, not info1
}

}  // namespace
}  // namespace vmtrace::analysis
