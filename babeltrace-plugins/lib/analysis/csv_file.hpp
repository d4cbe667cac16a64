// SPDX-License-Identifier: MIT
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <string_view>

namespace vmtrace::analysis {

// A CSV file written row by row (or a JSON Lines file: no header); errors
// are thrown with the file's name.
class CsvFile {
public:
    CsvFile(const std::string& path, std::string_view header);
    ~CsvFile();
    CsvFile(const CsvFile&) = delete;
    CsvFile& operator=(const CsvFile&) = delete;

    // `row` is one line without its newline, fields already quoted.
    void write(std::string_view row);
    // Flushes and closes; throws when anything could not be written.
    void close();
    [[nodiscard]] std::uint64_t rows() const { return rows_; }

    // A field quoted as RFC 4180 wants when it holds a comma or a quote.
    static std::string quote(std::string_view field);
    // Appends `field`, quoted as quote() does, to `out`.
    static void append_quoted(std::string& out, std::string_view field);

private:
    std::string path_;
    std::FILE* file_ = nullptr;
    std::uint64_t rows_ = 0;
};

}  // namespace vmtrace::analysis
