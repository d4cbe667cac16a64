// SPDX-License-Identifier: MIT
#include "output_dir.hpp"

#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli_common.hpp"

namespace fs = std::filesystem;

namespace vmtrace::cli {
namespace {

// The path with symbolic links and `..` resolved as far as it exists.
fs::path resolved(const fs::path& path) {
    std::error_code ec;
    fs::path out = fs::weakly_canonical(fs::absolute(path), ec);
    return ec ? fs::absolute(path).lexically_normal() : out;
}

// Whether `inner` is `outer` or lies below it.
bool within(const fs::path& inner, const fs::path& outer) {
    auto i = inner.begin();
    for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
        if (o->empty() && std::next(o) == outer.end()) {
            break;  // a trailing separator
        }
        if (i == inner.end() || *i != *o) {
            return false;
        }
    }
    return true;
}

bool refused_for_permission(int err) {
    return err == EACCES || err == EPERM || err == EROFS;
}

[[noreturn]] void refuse(const fs::path& path, const std::string& doing, int err) {
    const std::string text = fmt::format("{}: cannot {}: {}", path.string(), doing, std::strerror(err));
    if (refused_for_permission(err)) {
        throw SystemError(text);
    }
    throw ProcessingError(text);
}

// `dir`, empty: a staging directory, named after this process, whose
// earlier self a killed run of the same pid may have left.
void create_staging_dir(const fs::path& dir) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (!fs::create_directory(dir, ec)) {
        refuse(dir, "create it", ec ? ec.value() : EEXIST);
    }
}

}  // namespace

void check_output_apart(const fs::path& output, const std::vector<std::string>& inputs) {
    const fs::path out = resolved(output);
    for (const std::string& input : inputs) {
        const fs::path in = resolved(input);
        if (within(in, out)) {
            throw UsageError(fmt::format("{}: the output {} the input {}: writing there would damage it",
                                         output.string(), in == out ? "is" : "contains", input));
        }
        if (within(out, in)) {
            throw UsageError(
                fmt::format("{}: the output lies inside the input {}: writing there would change what is read",
                            output.string(), input));
        }
    }
}

std::string write_trouble(const fs::path& dir) {
    struct statvfs fs_stat {};
    if (statvfs(dir.c_str(), &fs_stat) == 0) {
        constexpr unsigned long long kLow = 1ULL << 20U;
        const unsigned long long free_bytes =
            static_cast<unsigned long long>(fs_stat.f_bavail) * static_cast<unsigned long long>(fs_stat.f_frsize);
        if ((fs_stat.f_flag & ST_RDONLY) != 0) {
            return "read-only file system";
        }
        if (free_bytes < kLow || (fs_stat.f_files != 0 && fs_stat.f_favail == 0)) {
            return fmt::format("no space left on its file system ({} bytes free)", free_bytes);
        }
    }
    if (access(dir.c_str(), W_OK | X_OK) != 0 && refused_for_permission(errno)) {
        return std::strerror(errno);
    }
    return {};
}

void check_output_file(const fs::path& file) {
    std::error_code ec;
    const auto status = fs::status(file, ec);
    // A device or FIFO is written to, not replaced (`--stats /dev/stdout`).
    if (fs::is_directory(status)) {
        throw UsageError(fmt::format("{}: is a directory", file.string()));
    }
    const fs::path parent = fs::absolute(file).parent_path();
    if (!fs::is_directory(parent, ec)) {
        throw UsageError(fmt::format("{}: no such directory", parent.string()));
    }
    check_writable_dir(parent);
}

void check_writable_dir(const fs::path& dir) {
    if (access(dir.c_str(), W_OK | X_OK) != 0) {
        refuse(dir, "write into it", errno);
    }
}

StagedOutput::StagedOutput(fs::path out, bool force, const std::string& marker) : out_(resolved(out)) {
    std::error_code ec;
    const auto status = fs::symlink_status(out_, ec);
    if (fs::exists(status)) {
        if (!fs::is_directory(status)) {
            throw UsageError(fmt::format("{}: exists and is not a directory", out.string()));
        }
        if (!fs::is_empty(out_, ec)) {
            if (!force) {
                throw UsageError(
                    fmt::format("{}: not empty (--force replaces an earlier output of this command)", out.string()));
            }
            if (!fs::exists(out_ / marker, ec)) {
                throw UsageError(fmt::format(
                    "{}: not empty and not an earlier output of this command (it has no {}): --force replaces only "
                    "those; choose another directory",
                    out.string(), marker));
            }
        }
    }
    const fs::path parent = out_.parent_path();
    if (!fs::is_directory(parent, ec)) {
        if (!fs::create_directories(parent, ec) && ec) {
            refuse(parent, "create it", ec.value());
        }
    }
    check_writable_dir(parent);
    if (fs::exists(status)) {
        check_writable_dir(out_);
    }
    // Hidden, beside the output, named after this process: two runs never
    // share one, and a rename moves it into place on the same file system.
    staging_ = parent / fmt::format(".{}.vmtrace-staging-{}", out_.filename().string(), getpid());
    create_staging_dir(staging_);
}

StagedOutput::~StagedOutput() {
    if (!committed_) {
        std::error_code ec;
        fs::remove_all(staging_, ec);
    }
}

void StagedOutput::commit() {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(out_, ec))) {
        // The old output goes aside first, so that a failure between the
        // two renames leaves one complete output, never a mixture.
        const fs::path old = out_.parent_path() / fmt::format(".{}.vmtrace-old-{}", out_.filename().string(), getpid());
        fs::rename(out_, old, ec);
        if (ec) {
            refuse(out_, "replace it", ec.value());
        }
        fs::rename(staging_, out_, ec);
        if (ec) {
            fs::rename(old, out_);
            refuse(out_, "write it", ec.value());
        }
        fs::remove_all(old, ec);
    } else {
        fs::rename(staging_, out_, ec);
        if (ec) {
            refuse(out_, "write it", ec.value());
        }
    }
    committed_ = true;
}

StagedFiles::StagedFiles(fs::path dir, std::vector<std::string> names)
    : dir_(std::move(dir)), names_(std::move(names)) {
    std::error_code ec;
    for (const std::string& name : names_) {
        const fs::path file = dir_ / name;
        const auto status = fs::symlink_status(file, ec);
        if (fs::exists(status) && !fs::is_regular_file(status)) {
            throw UsageError(fmt::format("{}: exists and is not a regular file: not replaced", file.string()));
        }
    }
    // Named after this process: two runs into one directory never share it.
    staging_ = dir_ / fmt::format(".vmtrace-staging-{}", getpid());
    create_staging_dir(staging_);
}

StagedFiles::~StagedFiles() {
    std::error_code ec;
    fs::remove_all(staging_, ec);  // empty after commit()
}

void StagedFiles::commit() {
    std::error_code ec;
    for (const std::string& name : names_) {
        const fs::path written = staging_ / name;
        const fs::path file = dir_ / name;
        if (fs::exists(fs::symlink_status(written, ec))) {
            fs::rename(written, file, ec);
            if (ec) {
                refuse(file, "replace it", ec.value());
            }
        } else if (fs::exists(fs::symlink_status(file, ec))) {
            if (!fs::remove(file, ec) || ec) {
                refuse(file, "remove the earlier run's", ec.value());
            }
        }
    }
}

}  // namespace vmtrace::cli
