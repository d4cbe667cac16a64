// SPDX-License-Identifier: MIT
#include "metadata_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace vmtrace::ctfclock {
namespace {

constexpr std::uint32_t kPacketMagic = 0x75d11d57;
constexpr std::size_t kPacketHeaderSize = 37;

std::uint32_t load_u32(const std::string& bytes, std::size_t at, bool big_endian) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        const auto byte = static_cast<std::uint8_t>(bytes[at + static_cast<std::size_t>(big_endian ? i : 3 - i)]);
        v = (v << 8) | byte;
    }
    return v;
}

// TSDL tokens: enough of CTF 1.8's grammar to find top-level blocks and
// the attribute statements inside them.
struct Token {
    enum Kind { ident, number, string, punct } kind;
    std::size_t begin;
    std::size_t end;
    std::string_view text;
};

std::vector<Token> tokenize(const std::string& text, const std::string& where) {
    std::vector<Token> tokens;
    std::size_t i = 0;
    const std::size_t n = text.size();
    auto fail = [&](const char* what) {
        throw MetadataError(fmt::format("{}: metadata: {} at byte {}", where, what, i));
    };
    while (i < n) {
        const char c = text[i];
        if (std::isspace(static_cast<unsigned char>(c)) != 0) {
            ++i;
        } else if (c == '/' && i + 1 < n && text[i + 1] == '*') {
            const std::size_t close = text.find("*/", i + 2);
            if (close == std::string::npos) {
                fail("unterminated comment");
            }
            i = close + 2;
        } else if (c == '/' && i + 1 < n && text[i + 1] == '/') {
            const std::size_t eol = text.find('\n', i);
            i = eol == std::string::npos ? n : eol + 1;
        } else if (c == '"' || c == '\'') {
            const std::size_t start = i++;
            while (i < n && text[i] != c) {
                i += text[i] == '\\' ? 2 : 1;
            }
            if (i >= n) {
                i = start;
                fail("unterminated string");
            }
            ++i;
            tokens.push_back({Token::string, start, i, std::string_view(text).substr(start, i - start)});
        } else if (std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_') {
            const std::size_t start = i;
            while (i < n && (std::isalnum(static_cast<unsigned char>(text[i])) != 0 || text[i] == '_')) {
                ++i;
            }
            tokens.push_back({Token::ident, start, i, std::string_view(text).substr(start, i - start)});
        } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
            const std::size_t start = i;
            while (i < n && std::isalnum(static_cast<unsigned char>(text[i])) != 0) {
                ++i;
            }
            tokens.push_back({Token::number, start, i, std::string_view(text).substr(start, i - start)});
        } else {
            tokens.push_back({Token::punct, i, i + 1, std::string_view(text).substr(i, 1)});
            ++i;
        }
    }
    return tokens;
}

// A CTF integer literal (decimal, 0x hex, 0 octal, u/l suffixes), signed.
std::optional<std::int64_t> parse_integer(const std::vector<Token>& value) {
    bool negative = false;
    std::size_t k = 0;
    if (k < value.size() && value[k].kind == Token::punct && (value[k].text == "-" || value[k].text == "+")) {
        negative = value[k].text == "-";
        ++k;
    }
    if (k + 1 != value.size() || value[k].kind != Token::number) {
        return std::nullopt;
    }
    std::string digits(value[k].text);
    while (!digits.empty() &&
           (digits.back() == 'u' || digits.back() == 'U' || digits.back() == 'l' || digits.back() == 'L')) {
        digits.pop_back();
    }
    int base = 10;
    std::size_t skip = 0;
    if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
        base = 16;
        skip = 2;
    } else if (digits.size() > 1 && digits[0] == '0') {
        base = 8;
        skip = 1;
    }
    if (digits.size() <= skip) {
        return std::nullopt;
    }
    unsigned __int128 v = 0;
    for (std::size_t j = skip; j < digits.size(); ++j) {
        const char d = digits[j];
        const int digit = std::isdigit(static_cast<unsigned char>(d)) != 0 ? d - '0'
                          : std::isxdigit(static_cast<unsigned char>(d)) != 0
                              ? std::tolower(static_cast<unsigned char>(d)) - 'a' + 10
                              : 99;
        if (digit >= base) {
            return std::nullopt;
        }
        v = v * static_cast<unsigned>(base) + static_cast<unsigned>(digit);
        if (v > static_cast<unsigned __int128>(INT64_MAX) + 1) {
            return std::nullopt;
        }
    }
    if (!negative && v > static_cast<unsigned __int128>(INT64_MAX)) {
        return std::nullopt;
    }
    return negative ? -static_cast<std::int64_t>(v - 1) - 1 : static_cast<std::int64_t>(v);
}

// One `NAME = VALUE;` statement of a block: token indexes.
struct Statement {
    std::size_t first;  // the name
    std::size_t last;   // the `;`
};

struct Block {
    std::size_t keyword;  // token index of `clock`, `env`, ...
    std::size_t close;    // token index of the closing `}`
    std::size_t semi;     // token index of the `;` after it
    std::vector<Statement> statements;
};

// The top-level blocks `KEYWORD { ... };` of the token list.
std::vector<Block> top_level_blocks(const std::vector<Token>& tokens, std::string_view keyword,
                                    const std::string& where) {
    std::vector<Block> blocks;
    int depth = 0;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const Token& t = tokens[i];
        if (t.kind == Token::punct && t.text == "{") {
            ++depth;
        } else if (t.kind == Token::punct && t.text == "}") {
            if (--depth < 0) {
                throw MetadataError(fmt::format("{}: metadata: unbalanced `}}` at byte {}", where, t.begin));
            }
        } else if (depth == 0 && t.kind == Token::ident && t.text == keyword && i + 1 < tokens.size() &&
                   tokens[i + 1].text == "{") {
            Block block{i, 0, 0, {}};
            std::size_t j = i + 2;
            int inner = 1;
            std::size_t statement_start = j;
            for (; j < tokens.size(); ++j) {
                if (tokens[j].kind != Token::punct) {
                    continue;
                }
                if (tokens[j].text == "{") {
                    ++inner;
                } else if (tokens[j].text == "}") {
                    if (--inner == 0) {
                        break;
                    }
                } else if (tokens[j].text == ";" && inner == 1) {
                    block.statements.push_back({statement_start, j});
                    statement_start = j + 1;
                }
            }
            if (j >= tokens.size()) {
                throw MetadataError(
                    fmt::format("{}: metadata: `{}` block at byte {} is not closed", where, keyword, t.begin));
            }
            block.close = j;
            block.semi = j + 1 < tokens.size() && tokens[j + 1].text == ";" ? j + 1 : j;
            blocks.push_back(block);
            i = block.semi;
        }
    }
    if (depth != 0) {
        throw MetadataError(fmt::format("{}: metadata: unbalanced braces", where));
    }
    return blocks;
}

// The statement's name, when it is `IDENT = ...;`.
std::string_view statement_name(const std::vector<Token>& tokens, const Statement& s) {
    if (s.first + 1 < s.last && tokens[s.first].kind == Token::ident && tokens[s.first + 1].text == "=") {
        return tokens[s.first].text;
    }
    return {};
}

std::vector<Token> statement_value(const std::vector<Token>& tokens, const Statement& s) {
    return {tokens.begin() + static_cast<std::ptrdiff_t>(s.first + 2),
            tokens.begin() + static_cast<std::ptrdiff_t>(s.last)};
}

// A string literal's value: quotes removed, each `\c` read as `c`.
std::string unquoted(std::string_view literal) {
    std::string out;
    for (std::size_t i = 1; i + 1 < literal.size(); ++i) {
        if (literal[i] == '\\' && i + 2 < literal.size()) {
            ++i;
        }
        out += literal[i];
    }
    return out;
}

std::string quoted(const std::string& value) {
    std::string out = "\"";
    for (const char c : value) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

}  // namespace

std::string read_metadata_text(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw MetadataError(fmt::format("{}: cannot read: {}", file.string(), std::strerror(errno)));
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() < 4 || (load_u32(bytes, 0, false) != kPacketMagic && load_u32(bytes, 0, true) != kPacketMagic)) {
        return bytes;  // plain text
    }
    const bool big_endian = load_u32(bytes, 0, true) == kPacketMagic;
    std::string text;
    std::size_t at = 0;
    while (at < bytes.size()) {
        if (bytes.size() - at < kPacketHeaderSize || load_u32(bytes, at, big_endian) != kPacketMagic) {
            throw MetadataError(fmt::format("{}: metadata packet at byte {} has no valid header", file.string(), at));
        }
        const std::uint64_t content_bits = load_u32(bytes, at + 24, big_endian);
        const std::uint64_t packet_bits = load_u32(bytes, at + 28, big_endian);
        const auto compression = static_cast<std::uint8_t>(bytes[at + 32]);
        const auto encryption = static_cast<std::uint8_t>(bytes[at + 33]);
        if (content_bits % 8 != 0 || packet_bits % 8 != 0 || content_bits < kPacketHeaderSize * 8 ||
            packet_bits < content_bits || at + packet_bits / 8 > bytes.size()) {
            throw MetadataError(fmt::format(
                "{}: metadata packet at byte {}: content size {} bits, packet size {} bits do not fit the file "
                "({} bytes)",
                file.string(), at, content_bits, packet_bits, bytes.size()));
        }
        if (compression != 0 || encryption != 0) {
            throw MetadataError(
                fmt::format("{}: metadata packet at byte {} is compressed or encrypted", file.string(), at));
        }
        text.append(bytes, at + kPacketHeaderSize, content_bits / 8 - kPacketHeaderSize);
        at += packet_bits / 8;
    }
    // Packets may be padded with NULs past the text.
    if (const auto nul = text.find('\0'); nul != std::string::npos) {
        text.resize(nul);
    }
    return text;
}

std::vector<ClockBlock> find_clocks(const std::string& text, const std::string& where) {
    const std::vector<Token> tokens = tokenize(text, where);
    std::vector<ClockBlock> clocks;
    for (const Block& block : top_level_blocks(tokens, "clock", where)) {
        ClockBlock clock;
        clock.begin = tokens[block.keyword].begin;
        clock.end = tokens[block.semi].end;
        for (const Statement& s : block.statements) {
            const std::string_view name = statement_name(tokens, s);
            const std::vector<Token> value = statement_value(tokens, s);
            auto integer = [&](std::string_view what) {
                const auto v = parse_integer(value);
                if (!v) {
                    throw MetadataError(fmt::format("{}: metadata: clock attribute `{}` at byte {} is not an integer",
                                                    where, what, tokens[s.first].begin));
                }
                return *v;
            };
            if (name == "name" && value.size() == 1) {
                clock.name = value[0].kind == Token::string ? unquoted(value[0].text) : std::string(value[0].text);
            } else if (name == "freq") {
                const std::int64_t freq = integer(name);
                if (freq <= 0) {
                    throw MetadataError(fmt::format("{}: metadata: clock frequency {} is not positive", where, freq));
                }
                clock.freq = static_cast<std::uint64_t>(freq);
            } else if (name == "offset_s") {
                clock.offset_s = integer(name);
            } else if (name == "offset") {
                clock.offset = integer(name);
            } else if (name == "uuid" && value.size() == 1 && value[0].kind == Token::string) {
                clock.uuid = unquoted(value[0].text);
            } else if (name == "absolute" && value.size() == 1) {
                const std::string_view v = value[0].text;
                clock.absolute = v == "true" || v == "TRUE" || v == "1";
            }
        }
        clocks.push_back(clock);
    }
    return clocks;
}

std::map<std::string, std::string> environment(const std::string& text, const std::string& where) {
    const std::vector<Token> tokens = tokenize(text, where);
    std::map<std::string, std::string> env;
    for (const Block& block : top_level_blocks(tokens, "env", where)) {
        for (const Statement& s : block.statements) {
            const std::string_view name = statement_name(tokens, s);
            const std::vector<Token> value = statement_value(tokens, s);
            if (name.empty() || value.empty()) {
                continue;
            }
            if (value.size() == 1 && value[0].kind == Token::string) {
                env[std::string(name)] = unquoted(value[0].text);
            } else {
                env[std::string(name)] = text.substr(value.front().begin, value.back().end - value.front().begin);
            }
        }
    }
    return env;
}

std::string rewrite_clock(const std::string& text, const ClockBlock& clock, std::uint64_t freq, std::int64_t offset_s,
                          std::int64_t offset, std::optional<bool> absolute, const std::vector<EnvEntry>& env,
                          const std::string& where) {
    const std::vector<Token> tokens = tokenize(text, where);
    const std::vector<Block> clocks = top_level_blocks(tokens, "clock", where);
    const Block* target = nullptr;
    for (const Block& b : clocks) {
        if (tokens[b.keyword].begin == clock.begin) {
            target = &b;
        }
    }
    if (target == nullptr) {
        throw MetadataError(fmt::format("{}: metadata: no clock block at byte {}", where, clock.begin));
    }
    std::string block = "clock {\n";
    for (const Statement& s : target->statements) {
        const std::string_view name = statement_name(tokens, s);
        if (name == "freq" || name == "offset_s" || name == "offset" || (absolute && name == "absolute")) {
            continue;
        }
        block += "\t" + text.substr(tokens[s.first].begin, tokens[s.last].end - tokens[s.first].begin) + "\n";
    }
    block += fmt::format("\tfreq = {};\n\toffset_s = {};\n\toffset = {};\n", freq, offset_s, offset);
    if (absolute) {
        block += fmt::format("\tabsolute = {};\n", *absolute ? "true" : "false");
    }
    block += "};";

    std::string entries;
    for (const EnvEntry& e : env) {
        entries += fmt::format("\t{} = {};\n", e.name, e.is_string ? quoted(e.value) : e.value);
    }
    const std::vector<Block> envs = top_level_blocks(tokens, "env", where);
    if (envs.size() > 1) {
        throw MetadataError(fmt::format("{}: metadata: more than one env block", where));
    }
    // An entry already there (a recorder may write vmtrace_vm_uid) is
    // replaced: removed here, added with the others.
    std::vector<std::pair<std::size_t, std::size_t>> removed;  // byte ranges
    std::size_t env_insert = std::string::npos;
    if (!envs.empty()) {
        for (const Statement& s : envs[0].statements) {
            const std::string_view name = statement_name(tokens, s);
            for (const EnvEntry& e : env) {
                if (name == e.name) {
                    removed.emplace_back(tokens[s.first].begin, tokens[s.last].end);
                }
            }
        }
        env_insert = tokens[envs[0].close].begin;
    }
    // Edits from the end, so earlier offsets stay valid.
    struct Edit {
        std::size_t begin;
        std::size_t end;
        std::string with;
    };
    std::vector<Edit> edits{{clock.begin, clock.end, block}};
    for (const auto& [begin, end] : removed) {
        edits.push_back({begin, end, ""});
    }
    if (env_insert != std::string::npos) {
        edits.push_back({env_insert, env_insert, entries});
    }
    std::sort(edits.begin(), edits.end(), [](const Edit& a, const Edit& b) { return a.begin > b.begin; });
    std::string out = text;
    for (const Edit& e : edits) {
        out.replace(e.begin, e.end - e.begin, e.with);
    }
    if (env_insert == std::string::npos) {
        out += "\nenv {\n" + entries + "};\n";
    }
    return plain_text_metadata(out);
}

std::string plain_text_metadata(const std::string& text) {
    return text.rfind("/* CTF 1.8", 0) == 0 ? text : "/* CTF 1.8 */\n\n" + text;
}

}  // namespace vmtrace::ctfclock
