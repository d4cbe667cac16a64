// SPDX-License-Identifier: MIT
#include "lib/ctf_clock/metadata_text.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace vmtrace::ctfclock {
namespace {

const std::string kLttngLike = R"(/* CTF 1.8 */

typealias integer { size = 8; align = 8; signed = false; } := uint8_t;

trace {
	major = 1;
	minor = 8;
	uuid = "2a6422d0-6cee-11e0-8c08-cb07d7b3a564";
	byte_order = le;
};

env {
	hostname = "guest0";
	domain = "kernel";
	tracer_major = 2;
};

clock {
	name = "monotonic";
	uuid = "0b1b1e6b-2f3a-4b5c-9d8e-7f6a5b4c3d2e";
	description = "Monotonic Clock; with a semicolon { and a brace";
	freq = 1000000000; /* Frequency, in Hz */
	/* clock value offset from Epoch is: offset * (1/freq) */
	offset = 1790003939522901210;
};

typealias integer {
	size = 27; align = 1; signed = false;
	map = clock.monotonic.value;
} := uint27_clock_monotonic_t;
)";

class TempFile {
public:
    explicit TempFile(const std::string& bytes) {
        char name[] = "/tmp/vmtrace-metadata-XXXXXX";
        const int fd = mkstemp(name);
        path_ = name;
        close(fd);
        std::ofstream(path_, std::ios::binary) << bytes;
    }
    ~TempFile() { std::remove(path_.c_str()); }
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::string packet(const std::string& text, std::size_t padding, bool big_endian) {
    auto u32 = [&](std::uint32_t v) {
        std::string b(4, '\0');
        for (int i = 0; i < 4; ++i) {
            b[static_cast<std::size_t>(big_endian ? 3 - i : i)] = static_cast<char>((v >> (8 * i)) & 0xff);
        }
        return b;
    };
    const auto content = static_cast<std::uint32_t>((37 + text.size()) * 8);
    const auto size = static_cast<std::uint32_t>(content + padding * 8);
    std::string p = u32(0x75d11d57) + std::string(16, '\x11') + u32(0) + u32(content) + u32(size);
    p += std::string("\0\0\0\x01\x08", 5);
    return p + text + std::string(padding, '\0');
}

TEST(MetadataText, ReadsPlainTextAsIs) {
    const TempFile file(kLttngLike);
    EXPECT_EQ(read_metadata_text(file.path()), kLttngLike);
}

TEST(MetadataText, JoinsPacketsInEitherByteOrder) {
    for (const bool big : {false, true}) {
        const std::string first = kLttngLike.substr(0, 100);
        const std::string second = kLttngLike.substr(100);
        const TempFile file(packet(first, 13, big) + packet(second, 0, big));
        EXPECT_EQ(read_metadata_text(file.path()), kLttngLike) << (big ? "big endian" : "little endian");
    }
}

TEST(MetadataText, RefusesATruncatedPacketNamingTheFile) {
    const std::string whole = packet(kLttngLike, 0, false);
    const TempFile file(whole.substr(0, whole.size() - 10));
    try {
        read_metadata_text(file.path());
        FAIL() << "no error";
    } catch (const MetadataError& e) {
        EXPECT_NE(std::string(e.what()).find(file.path()), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("do not fit"), std::string::npos) << e.what();
    }
}

TEST(MetadataText, FindsTheClockAndItsAttributes) {
    const auto clocks = find_clocks(kLttngLike, "m");
    ASSERT_EQ(clocks.size(), 1u);
    EXPECT_EQ(clocks[0].name, "monotonic");
    EXPECT_EQ(clocks[0].uuid, "0b1b1e6b-2f3a-4b5c-9d8e-7f6a5b4c3d2e");
    EXPECT_EQ(clocks[0].freq, 1'000'000'000u);
    EXPECT_EQ(clocks[0].offset_s, 0);
    EXPECT_EQ(clocks[0].offset, 1790003939522901210);
    EXPECT_FALSE(clocks[0].absolute.has_value());
    EXPECT_EQ(kLttngLike.substr(clocks[0].begin, 7), "clock {");
    EXPECT_EQ(kLttngLike[clocks[0].end - 1], ';');
}

TEST(MetadataText, ReadsTheEnvironment) {
    const auto env = environment(kLttngLike, "m");
    EXPECT_EQ(env.at("hostname"), "guest0");
    EXPECT_EQ(env.at("tracer_major"), "2");
    EXPECT_EQ(env.size(), 3u);
    EXPECT_EQ(environment("env { name = \"a \\\"quoted\\\" \\\\ word\"; };", "m").at("name"), "a \"quoted\" \\ word");
}

TEST(MetadataText, ReadsHexOctalNegativeAndSuffixedIntegers) {
    const auto clocks =
        find_clocks("clock { name = c; freq = 0x3B9ACA00ULL; offset_s = -5; offset = 010; absolute = TRUE; };", "m");
    ASSERT_EQ(clocks.size(), 1u);
    EXPECT_EQ(clocks[0].freq, 1'000'000'000u);
    EXPECT_EQ(clocks[0].offset_s, -5);
    EXPECT_EQ(clocks[0].offset, 8);
    EXPECT_EQ(clocks[0].absolute, true);
}

TEST(MetadataText, RefusesUnreadableText) {
    EXPECT_THROW(find_clocks("clock { freq = 1000; /* never closed", "m"), MetadataError);
    EXPECT_THROW(find_clocks("clock { name = \"never closed; };", "m"), MetadataError);
    EXPECT_THROW(find_clocks("clock { freq = many; };", "m"), MetadataError);
    EXPECT_THROW(find_clocks("clock { freq = 0; };", "m"), MetadataError);
    EXPECT_THROW(find_clocks("clock { freq = 1; ", "m"), MetadataError);
    EXPECT_THROW(find_clocks("};", "m"), MetadataError);
}

TEST(MetadataText, RewritesTheClockAndAddsEnvironmentEntries) {
    const auto clock = find_clocks(kLttngLike, "m").at(0);
    const std::string out =
        rewrite_clock(kLttngLike, clock, 999'800'040, 1790003944, 12345, true,
                      {{"vmtrace_vm_uid", "0x2a", true}, {"vmtrace_sync_bound_ns", "1200", false}}, "m");
    const auto clocks = find_clocks(out, "out");
    ASSERT_EQ(clocks.size(), 1u);
    EXPECT_EQ(clocks[0].freq, 999'800'040u);
    EXPECT_EQ(clocks[0].offset_s, 1790003944);
    EXPECT_EQ(clocks[0].offset, 12345);
    EXPECT_EQ(clocks[0].absolute, true);
    EXPECT_EQ(clocks[0].name, "monotonic");
    // Everything else is kept: the UUID, the description with its `;`, the
    // mapping of integers to the clock, the earlier environment.
    EXPECT_NE(out.find("uuid = \"0b1b1e6b-2f3a-4b5c-9d8e-7f6a5b4c3d2e\";"), std::string::npos);
    EXPECT_NE(out.find("Monotonic Clock; with a semicolon { and a brace"), std::string::npos);
    EXPECT_NE(out.find("map = clock.monotonic.value;"), std::string::npos);
    EXPECT_NE(out.find("hostname = \"guest0\";"), std::string::npos);
    EXPECT_NE(out.find("vmtrace_vm_uid = \"0x2a\";"), std::string::npos);
    EXPECT_NE(out.find("vmtrace_sync_bound_ns = 1200;"), std::string::npos);
    EXPECT_EQ(out.find("1790003939522901210"), std::string::npos);
    EXPECT_EQ(out.rfind("/* CTF 1.8 */", 0), 0u);
    // The entries went into the one env block.
    EXPECT_EQ(out.find("env {"), out.rfind("env {"));
}

TEST(MetadataText, CreatesAnEnvironmentWhenThereIsNone) {
    const std::string text = "/* CTF 1.8 */\nclock { name = c; freq = 1000; };\n";
    const std::string out = rewrite_clock(text, find_clocks(text, "m").at(0), 1001, 0, 0, std::nullopt,
                                          {{"vmtrace_time_base", "host h", true}}, "m");
    EXPECT_NE(out.find("env {\n\tvmtrace_time_base = \"host h\";\n};"), std::string::npos) << out;
}

TEST(MetadataText, ReplacesAnEntryOfTheSameName) {
    const std::string text = "clock { name = c; };\nenv { vmtrace_vm_uid = \"0x1\"; hostname = \"g\"; };\n";
    const std::string out = rewrite_clock(text, find_clocks(text, "m").at(0), 1, 0, 0, std::nullopt,
                                          {{"vmtrace_vm_uid", "0x2", true}}, "m");
    const auto env = environment(out, "m");
    EXPECT_EQ(env.at("vmtrace_vm_uid"), "0x2");
    EXPECT_EQ(env.at("hostname"), "g");
    EXPECT_EQ(out.find("0x1"), std::string::npos) << out;
}

}  // namespace
}  // namespace vmtrace::ctfclock
