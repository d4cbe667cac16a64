// SPDX-License-Identifier: MIT
#include "trace_check.hpp"

#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cli_common.hpp"

namespace fs = std::filesystem;

namespace vmtrace::cli {
namespace {

// CTF 1.8 metadata packet header (docs: CTF specification, section 7.1):
// magic, uuid[16], checksum, content_size, packet_size (both in bits), then
// compression, encryption and checksum schemes and the major/minor version.
constexpr std::uint32_t kMetadataMagic = 0x75D11D57;
constexpr std::size_t kHeaderBytes = 4 + 16 + 4 + 4 + 4 + 5;

[[noreturn]] void refuse_read(const fs::path& file, int err) {
    const std::string text = fmt::format("{}: cannot read: {}", file.string(), std::strerror(err));
    if (err == EACCES || err == EPERM) {
        throw SystemError(text);
    }
    throw ProcessingError(text);
}

std::uint32_t read_u32(const unsigned char* p, bool big_endian) {
    return big_endian
               ? (std::uint32_t{p[0]} << 24U) | (std::uint32_t{p[1]} << 16U) | (std::uint32_t{p[2]} << 8U) | p[3]
               : (std::uint32_t{p[3]} << 24U) | (std::uint32_t{p[2]} << 16U) | (std::uint32_t{p[1]} << 8U) | p[0];
}

void check_metadata(const fs::path& file) {
    std::error_code ec;
    const auto status = fs::status(file, ec);
    if (ec) {
        refuse_read(file, ec.value());
    }
    if (!fs::is_regular_file(status)) {
        throw ProcessingError(fmt::format("{}: not a regular file", file.string()));
    }
    const std::uintmax_t size = fs::file_size(file, ec);
    if (ec) {
        refuse_read(file, ec.value());
    }
    if (size == 0) {
        throw ProcessingError(fmt::format("{}: empty metadata file", file.string()));
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        refuse_read(file, errno);
    }
    std::array<unsigned char, kHeaderBytes> header{};
    in.read(reinterpret_cast<char*>(header.data()), 4);
    if (!in) {
        return;  // a few bytes of text: src.ctf.fs says what is wrong with it
    }
    const bool little = read_u32(header.data(), false) == kMetadataMagic;
    const bool big = read_u32(header.data(), true) == kMetadataMagic;
    if (!little && !big) {
        // Plain-text metadata (its parser stops at the end of the file)
        // starts with text; src.ctf.fs refuses anything else without a word
        // on why.
        for (std::size_t i = 0; i < 4; ++i) {
            const unsigned char c = header[i];
            if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c >= 0x7f) {
                throw ProcessingError(fmt::format(
                    "{}: not CTF metadata: neither a metadata packet (magic 0x75D11D57) nor text", file.string()));
            }
        }
        return;
    }
    // Packetized: every packet must be whole, with sane sizes.
    std::uintmax_t offset = 0;
    std::array<unsigned char, 16> uuid{};
    while (offset < size) {
        const auto where = [&](const std::string& what) {
            return ProcessingError(
                fmt::format("{}: damaged metadata packet at byte {}: {}", file.string(), offset, what));
        };
        if (size - offset < kHeaderBytes) {
            throw where(
                fmt::format("{} bytes left, a packet header has {} (truncated file?)", size - offset, kHeaderBytes));
        }
        in.seekg(static_cast<std::streamoff>(offset));
        in.read(reinterpret_cast<char*>(header.data()), kHeaderBytes);
        if (!in) {
            refuse_read(file, errno);
        }
        if (read_u32(header.data(), big) != kMetadataMagic) {
            throw where("no packet magic 0x75D11D57");
        }
        const std::uint32_t content_bits = read_u32(header.data() + 24, big);
        const std::uint32_t packet_bits = read_u32(header.data() + 28, big);
        if (packet_bits == 0 || packet_bits % 8 != 0 || content_bits % 8 != 0 || content_bits < kHeaderBytes * 8 ||
            content_bits > packet_bits) {
            throw where(fmt::format("content size {} bits, packet size {} bits", content_bits, packet_bits));
        }
        if (packet_bits / 8 > size - offset) {
            throw where(fmt::format("the packet has {} bytes, the file only {} more (truncated file?)", packet_bits / 8,
                                    size - offset));
        }
        if (offset == 0) {
            std::memcpy(uuid.data(), header.data() + 4, uuid.size());
        } else if (std::memcmp(uuid.data(), header.data() + 4, uuid.size()) != 0) {
            throw where("its trace UUID differs from the first packet's");
        }
        offset += packet_bits / 8;
    }
}

}  // namespace

void check_trace_dir(const std::string& dir) {
    const fs::path root(dir);
    check_metadata(root / "metadata");
    // What src.ctf.fs reads as streams: every other file of the directory
    // not starting with a dot (it skips the index/ subdirectory).
    bool data = false;
    std::error_code ec;
    for (auto it = fs::directory_iterator(root, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        const fs::path& path = it->path();
        const std::string name = path.filename().string();
        if (name == "metadata" || name.starts_with(".")) {
            continue;
        }
        const auto status = it->status(ec);
        if (ec) {
            refuse_read(path, ec.value());
        }
        if (fs::is_directory(status)) {
            continue;
        }
        if (!fs::is_regular_file(status)) {
            throw ProcessingError(fmt::format(
                "{}: not a regular file (a FIFO, device or socket cannot be a stream file)", path.string()));
        }
        data = data || fs::file_size(path, ec) > 0;
    }
    if (ec) {
        refuse_read(root, ec.value());
    }
    if (!data) {
        throw ProcessingError(fmt::format(
            "{}: a trace with metadata but no stream file holding events (an incomplete copy?)", root.string()));
    }
}

}  // namespace vmtrace::cli
