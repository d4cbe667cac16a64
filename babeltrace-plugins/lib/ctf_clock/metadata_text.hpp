// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vmtrace::ctfclock {

// A CTF 1.8 metadata file that cannot be read or understood; the message
// names the file and what is wrong.
class MetadataError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The TSDL text of a CTF 1.8 metadata file, plain or packetized (LTTng
// writes packets: a 37-byte header with magic 0x75d11d57 in the trace's
// byte order, then content_size / 8 - 37 bytes of text per packet).
std::string read_metadata_text(const std::filesystem::path& file);

// `text` as a plain-text metadata file: with the `/* CTF 1.8 */` signature
// readers look for first (packetized metadata's text may lack it).
std::string plain_text_metadata(const std::string& text);

// The attributes of a `clock { ... };` block that the rewrite uses.  A
// missing attribute has CTF 1.8's default (freq 1 GHz, offsets 0, not
// absolute).
struct ClockBlock {
    std::size_t begin = 0;  // offset of `clock` in the text
    std::size_t end = 0;    // just past the block's `;`
    std::string name;
    std::string uuid;  // empty when the clock has none
    std::uint64_t freq = 1'000'000'000;
    std::int64_t offset_s = 0;
    std::int64_t offset = 0;  // cycles
    std::optional<bool> absolute;
};

// The top-level clock blocks of `text`, in order.  Throws MetadataError
// (naming `where`) on text it cannot tokenize (an unterminated comment or
// string, unbalanced braces) or on a clock attribute it cannot read.
std::vector<ClockBlock> find_clocks(const std::string& text, const std::string& where);

// The entries of the top-level `env` block (string values unquoted and
// unescaped; integers as written).
std::map<std::string, std::string> environment(const std::string& text, const std::string& where);

// `text` with `clock`'s freq, offset_s and offset (and absolute, when
// given) replaced, and `env` entries added to the `env` block (created when
// there is none; an entry of the same name already there is replaced).
// String values are quoted, integers not.
struct EnvEntry {
    std::string name;
    std::string value;
    bool is_string = true;
};
std::string rewrite_clock(const std::string& text, const ClockBlock& clock, std::uint64_t freq, std::int64_t offset_s,
                          std::int64_t offset, std::optional<bool> absolute, const std::vector<EnvEntry>& env,
                          const std::string& where);

}  // namespace vmtrace::ctfclock
