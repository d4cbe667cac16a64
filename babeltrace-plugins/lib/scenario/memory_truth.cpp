// SPDX-License-Identifier: MIT
#include "memory_truth.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace vmtrace::scenario {

const char* to_string(TrueAttribution attribution) {
    switch (attribution) {
    case TrueAttribution::guest:
        return "guest";
    case TrueAttribution::guest_kernel:
        return "guest-kernel";
    case TrueAttribution::shared_other:
        return "shared-other";
    case TrueAttribution::host_on_behalf:
        return "host-on-behalf";
    case TrueAttribution::host:
        return "host";
    case TrueAttribution::ambiguous:
        return "ambiguous";
    case TrueAttribution::before_map:
        return "before-map";
    }
    return "unknown";
}

MemoryTruth::MemoryTruth(std::string path, std::int64_t host_origin_ns, const std::vector<std::string>& guest_names)
    : path_(std::move(path)) {
    if (path_.empty()) {
        return;
    }
    file_ = std::fopen(path_.c_str(), "wb");
    if (file_ == nullptr) {
        throw std::runtime_error(
            fmt::format("cannot write the memory ground truth `{}`: {}", path_, std::strerror(errno)));
    }
    const std::uint32_t header[2] = {1, sizeof(MemoryTruthRecord)};
    std::fwrite(kMemoryTruthMagic, 1, sizeof kMemoryTruthMagic, file_);
    std::fwrite(header, sizeof header, 1, file_);
    std::fwrite(&host_origin_ns, sizeof host_origin_ns, 1, file_);
    const auto count = static_cast<std::uint32_t>(guest_names.size());
    std::fwrite(&count, sizeof count, 1, file_);
    for (const std::string& name : guest_names) {
        const auto length = static_cast<std::uint16_t>(name.size());
        std::fwrite(&length, sizeof length, 1, file_);
        std::fwrite(name.data(), 1, length, file_);
    }
    buffer_.reserve(4096);
}

MemoryTruth::~MemoryTruth() {
    if (file_ != nullptr) {
        std::fclose(file_);
    }
}

void MemoryTruth::flush() {
    if (file_ != nullptr && !buffer_.empty()) {
        std::fwrite(buffer_.data(), sizeof(MemoryTruthRecord), buffer_.size(), file_);
    }
    buffer_.clear();
}

void MemoryTruth::add(const MemoryTruthRecord& record) {
    ++records_;
    if (record.lost != 0) {
        ++lost_;
    } else {
        // Copies: the record is packed, and a reference to its members
        // (std::map::operator[] takes one) may be misaligned.
        const std::int32_t vm = record.vm;
        const std::int32_t pid = record.pid;
        const std::uint8_t attribution = record.attribution;
        const std::uint8_t kind = record.kind;
        ++by_attribution_.at(attribution);
        ++by_vm_[vm].at(attribution);
        if (vm >= 0 && pid >= 0) {
            ++by_process_[{vm, pid}].at(kind < 3 ? kind : 0);
        }
    }
    if (file_ != nullptr) {
        buffer_.push_back(record);
        if (buffer_.size() == buffer_.capacity()) {
            flush();
        }
    }
}

std::string MemoryTruth::finish(const std::vector<std::string>& names) {
    if (file_ != nullptr) {
        flush();
        const bool failed = std::ferror(file_) != 0;
        const bool close_failed = std::fclose(file_) != 0;
        file_ = nullptr;
        if (failed || close_failed) {
            throw std::runtime_error(fmt::format("cannot write the memory ground truth `{}`", path_));
        }
    }
    auto counts = [](const std::array<std::uint64_t, 7>& by) {
        nlohmann::ordered_json out = nlohmann::ordered_json::object();
        for (unsigned a = 0; a < by.size(); ++a) {
            if (by[a] != 0) {
                out[to_string(static_cast<TrueAttribution>(a))] = by[a];
            }
        }
        return out;
    };
    nlohmann::ordered_json out;
    out["records"] = records_;
    out["written"] = records_ - lost_;
    out["lost"] = lost_;
    out["mapping_events"] = mapping_events_;
    out["by_attribution"] = counts(by_attribution_);
    nlohmann::ordered_json vms = nlohmann::ordered_json::object();
    for (const auto& [vm, by] : by_vm_) {
        const std::string name = vm < 0 ? "host" : vm < static_cast<std::int32_t>(names.size()) ? names[vm] : "?";
        vms[name] = counts(by);
    }
    out["by_vm"] = vms;
    nlohmann::ordered_json processes = nlohmann::ordered_json::array();
    for (const auto& [key, kinds] : by_process_) {
        const auto [vm, pid] = key;
        processes.push_back({{"vm", names.at(static_cast<std::size_t>(vm))},
                             {"pid", pid},
                             {"loads", kinds[0]},
                             {"stores", kinds[1]},
                             {"fetches", kinds[2]}});
    }
    out["by_process"] = processes;
    return out.dump();
}

}  // namespace vmtrace::scenario
