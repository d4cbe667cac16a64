// SPDX-License-Identifier: MIT
#include "output_writer.hpp"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace vmtrace::analysis {
namespace {

std::string percent(std::int64_t part, std::int64_t whole) {
    return whole <= 0 ? "-" : fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

std::string duration(std::int64_t ns) {
    if (ns < 10'000) {
        return fmt::format("{} ns", ns);
    }
    if (ns < 10'000'000) {
        return fmt::format("{:.1f} us", static_cast<double>(ns) / 1e3);
    }
    return fmt::format("{:.1f} ms", static_cast<double>(ns) / 1e6);
}

void write_text(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path.string());
    out << text;
    if (!out.flush()) {
        throw std::runtime_error(fmt::format("cannot write `{}`", path.string()));
    }
}

}  // namespace

OutputWriter::OutputWriter(const std::string& dir, bool intervals) : dir_(dir) {
    if (dir_.empty()) {
        return;  // no files: a live view's snapshots only
    }
    const std::filesystem::path path(dir_);
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) {
        throw std::runtime_error(fmt::format("output directory `{}` does not exist", dir_));
    }
    if (intervals) {
        states_ =
            std::make_unique<CsvFile>((path / "vcpu_states.csv").string(),
                                      "vm_id,vcpu,tid,state,start_ns,end_ns,duration_ns,pcpu,guest_tid,guest_comm");
    } else {
        std::filesystem::remove(path / "vcpu_states.csv", ec);  // never leave an earlier run's intervals
    }
    nondet_ = std::make_unique<CsvFile>((path / "nondet.csv").string(),
                                        "time_ns,vm_id,vcpu,kind,source,op,address,size,count,value,args");
    replay_ = std::make_unique<CsvFile>((path / "nondet.jsonl").string(), "");
    migrations_ =
        std::make_unique<CsvFile>((path / "migrations.csv").string(), "time_ns,machine,level,tid,comm,from,to");
}

void OutputWriter::replay_line(int vm, std::string_view members) {
    if (!replay_) {
        return;
    }
    row_buffer_.clear();
    auto out = std::back_inserter(row_buffer_);
    if (vm >= 0) {
        out = fmt::format_to(out, FMT_COMPILE("{{\"vm\":{},"), vm);
    } else {
        row_buffer_ += "{\"vm\":null,";
    }
    row_buffer_ += members;
    row_buffer_.push_back('}');
    replay_->write({row_buffer_.data(), row_buffer_.size()});
}

void OutputWriter::state_row(const StateRow& row) {
    if (!states_) {
        return;
    }
    // The hot path of the CSV files: compiled formats into one buffer.
    row_buffer_.clear();
    auto out = std::back_inserter(row_buffer_);
    if (row.vm >= 0) {
        out = fmt::format_to(out, FMT_COMPILE("{}"), row.vm);
    }
    out = fmt::format_to(out, FMT_COMPILE(",{},{},{},{},{},{},"), row.vcpu, row.tid, to_string(row.state), row.start,
                         row.end, row.end - row.start);
    if (row.pcpu >= 0) {
        out = fmt::format_to(out, FMT_COMPILE("{}"), row.pcpu);
    }
    row_buffer_.push_back(',');
    if (row.guest_tid >= 0) {
        out = fmt::format_to(out, FMT_COMPILE("{},"), row.guest_tid);
        CsvFile::append_quoted(row_buffer_, row.guest_comm);
    } else {
        row_buffer_.push_back(',');
    }
    states_->write({row_buffer_.data(), row_buffer_.size()});
}

void OutputWriter::nondet_row(std::int64_t time, int vm, std::string_view tail) {
    if (!nondet_) {
        return;
    }
    row_buffer_.clear();
    auto out = std::back_inserter(row_buffer_);
    out = fmt::format_to(out, FMT_COMPILE("{},"), time);
    if (vm >= 0) {
        out = fmt::format_to(out, FMT_COMPILE("{}"), vm);
    }
    fmt::format_to(out, FMT_COMPILE(",{}"), tail);
    nondet_->write({row_buffer_.data(), row_buffer_.size()});
}

void OutputWriter::migration_row(std::int64_t time, std::string_view machine, const char* level, std::int64_t tid,
                                 std::string_view comm, std::int64_t from, std::int64_t to) {
    if (!migrations_) {
        return;
    }
    migrations_->write(
        fmt::format("{},{},{},{},{},{},{}", time, CsvFile::quote(machine), level, tid, CsvFile::quote(comm), from, to));
}

void OutputWriter::close_streams() {
    if (states_) {
        states_->close();
    }
    if (dir_.empty()) {
        return;
    }
    nondet_->close();
    replay_->close();
    migrations_->close();
}

void OutputWriter::add_guest_times(const std::map<int, std::optional<clocksync::LinearTransform>>& clocks) const {
    if (dir_.empty()) {
        return;
    }
    const std::string path = (std::filesystem::path(dir_) / "nondet.jsonl").string();
    const std::string part = path + ".part";
    // A pass over a file of hundreds of MB: C stdio with large buffers.
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path.c_str(), "r"), &std::fclose);
    if (!in) {
        throw std::runtime_error(fmt::format("cannot read `{}` back: {}", path, std::strerror(errno)));
    }
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::fopen(part.c_str(), "w"), &std::fclose);
    if (!out) {
        throw std::runtime_error(fmt::format("cannot write `{}`: {}", part, std::strerror(errno)));
    }
    std::setvbuf(in.get(), nullptr, _IOFBF, 1 << 20);
    std::setvbuf(out.get(), nullptr, _IOFBF, 1 << 20);
    // Every line starts {"vm":N or {"vm":null, then "vcpu", "seq", "time_ns"
    // (OutputWriter::replay_line, ReplayLog::start).
    constexpr std::string_view kVm = "{\"vm\":";
    constexpr std::string_view kTime = "\"time_ns\":";
    char* buffer = nullptr;
    std::size_t capacity = 0;
    fmt::memory_buffer added;
    for (ssize_t n; (n = ::getline(&buffer, &capacity, in.get())) > 0;) {
        const std::string_view line(buffer, static_cast<std::size_t>(n));
        const std::optional<clocksync::LinearTransform>* clock = nullptr;
        int vm = -1;
        if (line.starts_with(kVm) &&
            std::from_chars(line.data() + kVm.size(), line.data() + line.size(), vm).ec == std::errc()) {
            if (auto found = clocks.find(vm); found != clocks.end() && found->second) {
                clock = &found->second;
            }
        }
        const std::size_t at = line.find(kTime);
        std::int64_t host = 0;
        const char* end = nullptr;
        if (at != std::string_view::npos) {
            const auto parsed = std::from_chars(line.data() + at + kTime.size(), line.data() + line.size(), host);
            end = parsed.ec == std::errc() ? parsed.ptr : nullptr;
        }
        if (end == nullptr) {
            std::string message = fmt::format("`{}`: a line without time_ns: {}", path, line);
            std::free(buffer);
            throw std::runtime_error(message);
        }
        const auto cut = static_cast<std::size_t>(end - line.data());
        added.clear();
        if (clock != nullptr) {
            fmt::format_to(std::back_inserter(added), FMT_COMPILE(",\"guest_ns\":{}"), (*clock)->invert(host));
        } else {
            added.append(std::string_view(",\"guest_ns\":null"));
        }
        std::fwrite(line.data(), 1, cut, out.get());
        std::fwrite(added.data(), 1, added.size(), out.get());
        std::fwrite(line.data() + cut, 1, line.size() - cut, out.get());
    }
    std::free(buffer);
    const bool read_failed = std::ferror(in.get()) != 0;
    const bool write_failed = std::ferror(out.get()) != 0 || std::fclose(out.release()) != 0;
    if (read_failed || write_failed) {
        throw std::runtime_error(fmt::format("cannot {} `{}`: {}", read_failed ? "read" : "write",
                                             read_failed ? path : part, std::strerror(errno)));
    }
    std::filesystem::rename(part, path);
}

std::string OutputWriter::write_results(const nlohmann::json& results) {
    if (dir_.empty()) {
        return summary_text(results);
    }
    const std::filesystem::path dir(dir_);
    write_text(dir / "analysis.json", results.dump(1) + "\n");
    write_exits_csv(results);
    write_vms_csv(results);
    std::string summary = summary_text(results);
    write_text(dir / "summary.txt", summary);
    return summary;
}

void OutputWriter::write_exits_csv(const nlohmann::json& results) const {
    CsvFile csv((std::filesystem::path(dir_) / "exits.csv").string(),
                "vm_id,vcpu,reason,code,isa,count,rate_per_s,min_ns,p50_ns,p90_ns,p99_ns,max_ns,mean_ns");
    for (const auto& vm : results["vms"]) {
        for (const auto& e : vm["exits"]) {
            const auto& l = e["latency_ns"];
            csv.write(fmt::format("{},{},{},{},{},{},{:.3f},{},{},{},{},{},{}", vm["id"].get<std::size_t>(),
                                  e["vcpu"].is_string() ? e["vcpu"].get<std::string>() : e["vcpu"].dump(),
                                  e["reason"].get<std::string>(), e["code"].get<std::uint32_t>(),
                                  e["isa"].get<std::string>(), e["count"].get<std::uint64_t>(),
                                  e["rate_per_s"].get<double>(), l["min"].dump(), l["p50"].dump(), l["p90"].dump(),
                                  l["p99"].dump(), l["max"].dump(), l["mean"].dump()));
        }
    }
    csv.close();
}

void OutputWriter::write_vms_csv(const nlohmann::json& results) const {
    CsvFile vms((std::filesystem::path(dir_) / "vms.csv").string(),
                "vm_id,name,vm_uid,qemu_pid,qemu_comm,guest_trace,vcpus");
    for (const auto& vm : results["vms"]) {
        auto text = [](const nlohmann::json& value) {
            return value.is_null() ? std::string() : value.is_string() ? value.get<std::string>() : value.dump();
        };
        vms.write(fmt::format("{},{},{},{},{},{},{}", vm["id"].get<std::size_t>(),
                              CsvFile::quote(vm["name"].get<std::string>()), text(vm["vm_uid"]), text(vm["qemu_pid"]),
                              CsvFile::quote(text(vm["qemu_comm"])), CsvFile::quote(text(vm["guest_trace"])),
                              vm["vcpus"].size()));
    }
    vms.close();
}

std::string summary_text(const nlohmann::json& results) {
    const std::int64_t span = results["end_ns"].get<std::int64_t>() - results["begin_ns"].get<std::int64_t>();
    std::string s;
    const auto& vms = results["vms"];
    std::size_t vcpu_total = 0;
    for (const auto& vm : vms) {
        vcpu_total += vm["vcpus"].size();
    }
    const auto& events = results["events"];
    s += fmt::format("{} VMs, {} vCPUs over {:.3f} s; {} host and {} guest events\n", vms.size(), vcpu_total,
                     static_cast<double>(span) / 1e9, events["host"].get<std::uint64_t>(),
                     events["guests"].get<std::uint64_t>());
    if (results.contains("ended_early") && results["ended_early"].is_string()) {
        s += fmt::format("ended early: {}; the results cover the traces up to then\n",
                         results["ended_early"].get<std::string>());
    }
    if (events.contains("discarded") && events["discarded"].get<std::uint64_t>() > 0) {
        s += fmt::format("LTTng discarded {} events (ring buffers full): the figures miss them\n",
                         events["discarded"].get<std::uint64_t>());
    }
    for (const auto& vm : vms) {
        std::string sync = "no guest trace";
        if (!vm["sync"].is_null()) {
            sync = fmt::format("sync {}", vm["sync"]["quality"].get<std::string>());
            if (!vm["sync"]["bound_ns"].is_null()) {
                sync += fmt::format(" (bound {})", duration(vm["sync"]["bound_ns"].get<std::int64_t>()));
            }
        } else if (!vm["guest_trace"].is_null()) {
            sync = "guest trace " + vm["guest_trace"].get<std::string>();
        }
        s += fmt::format("\nVM {}{}: {}\n", vm["name"].get<std::string>(),
                         vm["vm_uid"].is_null() ? "" : " (vm_uid " + vm["vm_uid"].get<std::string>() + ")", sync);
        s += fmt::format("  {:>4} {:>8} {:>8} {:>9} {:>8} {:>9} {:>10}  {}\n", "vCPU", "guest", "hyperv", "preempted",
                         "idle", "exits", "migrations", "busiest exits (p99 latency)");
        for (const auto& v : vm["vcpus"]) {
            const auto& st = v["states_ns"];
            std::vector<std::pair<std::uint64_t, std::string>> top;
            for (const auto& e : vm["exits"]) {
                if (e["vcpu"] == v["vcpu"] && e.value("tid", -1) == v["tid"]) {
                    top.emplace_back(
                        e["count"].get<std::uint64_t>(),
                        fmt::format("{} {} ({})", e["reason"].get<std::string>(), e["count"].get<std::uint64_t>(),
                                    duration(e["latency_ns"]["p99"].get<std::int64_t>())));
                }
            }
            std::sort(top.rbegin(), top.rend());
            std::string busiest;
            for (std::size_t i = 0; i < top.size() && i < 3; ++i) {
                busiest += (i > 0 ? ", " : "") + top[i].second;
            }
            s += fmt::format(
                "  {:>4} {:>8} {:>8} {:>9} {:>8} {:>9} {:>10}  {}\n", v["vcpu"].get<std::uint32_t>(),
                percent(st["guest"].get<std::int64_t>(), span), percent(st["hypervisor"].get<std::int64_t>(), span),
                percent(st["preempted"].get<std::int64_t>(), span), percent(st["idle"].get<std::int64_t>(), span),
                v["exits"].get<std::uint64_t>(), v["pcpu_migrations"].get<std::uint64_t>(), busiest);
        }
        const auto& nd = vm["nondet"];
        s += fmt::format(
            "  guest thread migrations {}; logged: {} port I/O, {} MMIO, {} MSR, {} interrupts, {} exceptions, {} "
            "hypercalls\n",
            vm["guest_migrations"]["count"].get<std::uint64_t>(), nd["pio"].get<std::uint64_t>(),
            nd["mmio"].get<std::uint64_t>(), nd["msr"].get<std::uint64_t>(), nd["interrupt"].get<std::uint64_t>(),
            nd["exception"].get<std::uint64_t>(), nd["hypercall"].get<std::uint64_t>());
        if (vm.contains("replay_log")) {
            const auto& rl = vm["replay_log"];
            s += fmt::format(
                "  replay log (nondet.jsonl): {} entries; values unknown {}, missing {}; never completed {}\n",
                rl["entries"].get<std::uint64_t>(), rl["unknown_values"].get<std::uint64_t>(),
                rl["missing_values"].get<std::uint64_t>(), rl["incomplete"].get<std::uint64_t>());
        }
    }
    for (const auto& w : results["warnings"]) {
        s += "warning: " + w.get<std::string>() + "\n";
    }
    return s;
}

}  // namespace vmtrace::analysis
