// SPDX-License-Identifier: MIT
#include "csv_file.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace vmtrace::analysis {

CsvFile::CsvFile(const std::string& path, std::string_view header) : path_(path) {
    file_ = std::fopen(path.c_str(), "w");
    if (file_ == nullptr) {
        throw std::runtime_error(fmt::format("cannot write `{}`: {}", path, std::strerror(errno)));
    }
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);  // rows are small and many
    if (!header.empty()) {
        write(header);
    }
    rows_ = 0;
}

CsvFile::~CsvFile() {
    if (file_ != nullptr) {
        std::fclose(file_);
    }
}

void CsvFile::write(std::string_view row) {
    std::fwrite(row.data(), 1, row.size(), file_);
    std::fputc('\n', file_);
    ++rows_;
}

void CsvFile::close() {
    if (file_ == nullptr) {
        return;
    }
    const bool failed = std::ferror(file_) != 0;
    const int closed = std::fclose(file_);
    file_ = nullptr;
    if (failed || closed != 0) {
        throw std::runtime_error(fmt::format("cannot write `{}`: {}", path_, std::strerror(errno)));
    }
}

void CsvFile::append_quoted(std::string& out, std::string_view field) {
    if (field.find_first_of(",\"\n") == std::string_view::npos) {
        out.append(field);
        return;
    }
    out += quote(field);
}

std::string CsvFile::quote(std::string_view field) {
    if (field.find_first_of(",\"\n") == std::string_view::npos) {
        return std::string(field);
    }
    std::string out = "\"";
    for (char c : field) {
        if (c == '"') {
            out += '"';
        }
        out += c;
    }
    out += '"';
    return out;
}

}  // namespace vmtrace::analysis
