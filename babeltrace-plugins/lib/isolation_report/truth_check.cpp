// SPDX-License-Identifier: MIT
#include "truth_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace vmtrace::isolate {
namespace {

constexpr std::size_t kExamples = 8;
constexpr std::uint64_t kSampleEvery = 16;  // time errors kept for percentiles

}  // namespace

TruthCheck::TruthCheck(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    if (file_ == nullptr) {
        throw std::runtime_error(
            fmt::format("cannot read the memory ground truth `{}`: {}", path, std::strerror(errno)));
    }
    char magic[sizeof scenario::kMemoryTruthMagic];
    std::uint32_t header[2] = {};
    std::uint32_t guests = 0;
    const bool ok = std::fread(magic, 1, sizeof magic, file_) == sizeof magic &&
                    std::memcmp(magic, scenario::kMemoryTruthMagic, sizeof magic) == 0 &&
                    std::fread(header, sizeof header, 1, file_) == 1 && header[0] == 1 &&
                    header[1] == sizeof(scenario::MemoryTruthRecord) &&
                    std::fread(&host_origin_ns_, sizeof host_origin_ns_, 1, file_) == 1 &&
                    std::fread(&guests, sizeof guests, 1, file_) == 1 && guests <= 4096;
    for (std::uint32_t g = 0; ok && g < guests; ++g) {
        std::uint16_t length = 0;
        std::string name;
        if (std::fread(&length, sizeof length, 1, file_) != 1) {
            break;
        }
        name.resize(length);
        if (std::fread(name.data(), 1, length, file_) != length) {
            break;
        }
        names_.push_back(std::move(name));
    }
    if (!ok || names_.size() != guests) {
        std::fclose(file_);
        file_ = nullptr;
        throw std::runtime_error(fmt::format("`{}` is not a vmtrace memory ground truth (version 1)", path));
    }
}

TruthCheck::~TruthCheck() {
    if (file_ != nullptr) {
        std::fclose(file_);
    }
}

bool TruthCheck::next_written(scenario::MemoryTruthRecord& record) {
    while (std::fread(&record, sizeof record, 1, file_) == 1) {
        if (record.lost == 0) {
            return true;
        }
        ++lost_skipped_;
    }
    return false;
}

void TruthCheck::check(const Access& access, const Result& result, const std::string& vm_name) {
    scenario::MemoryTruthRecord truth{};
    if (!next_written(truth)) {
        ++extra_;
        return;
    }
    ++compared_;
    const std::int64_t error = access.time - (host_origin_ns_ + truth.time);
    const std::int64_t magnitude = error < 0 ? -error : error;
    max_time_error_ = std::max(max_time_error_, magnitude);
    if (compared_ % kSampleEvery == 0) {
        time_errors_.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(magnitude, UINT32_MAX)));
    }
    if (result.attribution == Attribution::ambiguous) {
        ++ambiguous_;
        return;
    }
    const auto truth_attribution = static_cast<scenario::TrueAttribution>(truth.attribution);
    if (result.attribution == Attribution::guest_untraced) {
        // The join says it cannot know the process: no answer to compare.
        ++untraced_;
        return;
    }
    if (result.attribution == Attribution::host_untraced) {
        ++host_untraced_;  // nor anything at all
        return;
    }
    if (result.attribution == Attribution::before_map) {
        ++before_map_;
        before_map_agrees_ += truth_attribution == scenario::TrueAttribution::before_map ? 1 : 0;
        return;
    }
    const std::string truth_vm =
        truth.vm >= 0 && static_cast<std::size_t>(truth.vm) < names_.size() ? names_[truth.vm] : "";
    const bool in_guest = result.attribution == Attribution::guest || result.attribution == Attribution::guest_kernel ||
                          result.attribution == Attribution::shared_other;
    std::string why;
    if (static_cast<unsigned>(result.attribution) != truth.attribution) {
        why = "attribution";
    } else if (vm_name != truth_vm) {
        why = "vm";
    } else if (access.hpa != truth.hpa || access.cpu != truth.cpu) {
        why = "record (hpa or cpu: the records are out of step)";
    } else if (result.vm >= 0 && result.gpa != truth.gpa) {
        why = "gpa";
    } else if (in_guest && (result.pid != truth.pid || result.tid != truth.tid)) {
        why = "pid/tid";
    } else if (result.attribution == Attribution::guest && result.gva != truth.gva) {
        why = "gva";
    }
    if (why.empty()) {
        ++exact_;
        return;
    }
    ++mismatched_;
    ++confusion_[fmt::format("{} -> {}", scenario::to_string(truth_attribution), to_string(result.attribution))];
    if (examples_.size() < kExamples) {
        // Values, not references, of the packed record's members.
        const std::int32_t truth_pid = truth.pid;
        const std::int32_t truth_tid = truth.tid;
        const std::uint64_t truth_gpa = truth.gpa;
        const std::uint64_t truth_gva = truth.gva;
        examples_.push_back(fmt::format(
            "access {} at {} ns, cpu {}, hpa {:#x}: {} differs; truth {} vm `{}` pid {} tid {} gpa {:#x} gva {:#x}, "
            "joined {} vm `{}` pid {} tid {} gpa {:#x} gva {:#x}",
            compared_ - 1, access.time, access.cpu, access.hpa, why, scenario::to_string(truth_attribution), truth_vm,
            truth_pid, truth_tid, truth_gpa, truth_gva, to_string(result.attribution), vm_name, result.pid, result.tid,
            result.gpa, result.gva));
    }
}

std::uint64_t TruthCheck::missing() {
    std::uint64_t count = 0;
    scenario::MemoryTruthRecord record{};
    while (next_written(record)) {
        ++count;
    }
    return count;
}

nlohmann::ordered_json TruthCheck::to_json(std::int64_t bound_ns) const {
    std::vector<std::uint32_t> errors = time_errors_;
    std::sort(errors.begin(), errors.end());
    auto percentile = [&](double p) -> std::uint64_t {
        return errors.empty() ? 0 : errors[static_cast<std::size_t>(p * static_cast<double>(errors.size() - 1))];
    };
    nlohmann::ordered_json out;
    out["truth"] = path_;
    out["compared"] = compared_;
    out["exact"] = exact_;
    out["mismatched"] = mismatched_;
    out["ambiguous"] = ambiguous_;
    out["before_map"] = before_map_;
    out["guest_untraced"] = untraced_;
    out["host_untraced"] = host_untraced_;
    out["before_map_in_truth_too"] = before_map_agrees_;
    out["lost_in_truth"] = lost_skipped_;
    out["beyond_truth"] = extra_;
    const std::uint64_t decided = exact_ + mismatched_;
    out["exact_ratio"] = decided == 0 ? 1.0 : static_cast<double>(exact_) / static_cast<double>(decided);
    out["ambiguous_ratio"] = compared_ == 0 ? 0.0 : static_cast<double>(ambiguous_) / static_cast<double>(compared_);
    out["confusion"] = confusion_;
    out["examples"] = examples_;
    out["time_error_ns"] = {{"p50", percentile(0.5)},
                            {"p99", percentile(0.99)},
                            {"max", max_time_error_},
                            {"bound", bound_ns},
                            {"within_bound", max_time_error_ <= bound_ns}};
    return out;
}

}  // namespace vmtrace::isolate
