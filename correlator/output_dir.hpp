// SPDX-License-Identifier: MIT
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace vmtrace::cli {

// Refuses (UsageError) an output path that is one of `inputs`, contains
// one, or lies inside one: writing there would damage what the command
// reads.  `inputs`: the paths given on the command line and the trace
// directories found under them.
void check_output_apart(const std::filesystem::path& output, const std::vector<std::string>& inputs);

// Refuses a file to write (`--stats FILE`) that is a directory or lies in
// no directory (UsageError), or whose directory cannot be written
// (SystemError).  A device or FIFO is written to (`--stats /dev/stdout`).
void check_output_file(const std::filesystem::path& file);

// Refuses with SystemError (exit status 4) a directory the command cannot
// write into (permission, read-only file system), naming it.
void check_writable_dir(const std::filesystem::path& dir);

// Why writing into `dir` may have failed when it is not the command's own
// fault: its file system is full (less than 1 MiB or no inode left), read
// only, or refuses permission; empty when none of these holds.  babeltrace2's
// sink.ctf.fs reports a failed write without the system's reason.
std::string write_trouble(const std::filesystem::path& dir);

// An output directory written whole or not at all.
//
// The command writes into a staging directory beside `out` (same file
// system) and `commit()` moves it into place; a run that fails removes it,
// so no half-written output can pass for a complete one.  An `out` that
// exists must be empty, or, with `force`, hold a previous output of the
// same command (the file `marker` in it): it is then replaced whole, never
// merged into.  Anything else is refused (UsageError), as is an `out`
// that is not a directory.
class StagedOutput {
public:
    StagedOutput(std::filesystem::path out, bool force, const std::string& marker);
    StagedOutput(const StagedOutput&) = delete;
    StagedOutput& operator=(const StagedOutput&) = delete;
    ~StagedOutput();

    // Where to write.
    [[nodiscard]] const std::filesystem::path& dir() const { return staging_; }
    [[nodiscard]] const std::filesystem::path& out() const { return out_; }

    // Replaces `out` with what was written.
    void commit();

private:
    std::filesystem::path out_;
    std::filesystem::path staging_;
    bool committed_ = false;
};

// A command's result files in a directory the user chose (it may hold
// other files), written whole or not at all.
//
// The command writes into a hidden staging directory inside `dir`, and
// `commit()` moves each result over the earlier run's file of that name
// (a rename on the same file system) and removes an earlier result this
// run did not write, so that the results of two runs never mix.  A run
// that fails removes the staging directory: the earlier results stay as
// they were, and nothing half-written appears.  A result name that exists
// in `dir` and is not a regular file is refused (UsageError) up front.
class StagedFiles {
public:
    StagedFiles(std::filesystem::path dir, std::vector<std::string> names);
    StagedFiles(const StagedFiles&) = delete;
    StagedFiles& operator=(const StagedFiles&) = delete;
    ~StagedFiles();

    // Where to write.
    [[nodiscard]] const std::filesystem::path& dir() const { return staging_; }

    void commit();

private:
    std::filesystem::path dir_;
    std::vector<std::string> names_;
    std::filesystem::path staging_;
};

}  // namespace vmtrace::cli
