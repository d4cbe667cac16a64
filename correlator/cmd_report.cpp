// SPDX-License-Identifier: MIT
// `vmtrace report`: an analysis directory (docs/analysis-output.md) as one
// self-contained HTML file.  The command validates analysis.json and embeds
// it as JSON into the template of correlator/report/; the page's script
// draws everything from it, with no network access.
#include <fmt/format.h>
#include <unistd.h>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

#include "cli_common.hpp"
#include "report_assets.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace vmtrace::cli {
namespace {

constexpr const char* kFormat = "vmtrace-analysis";
constexpr int kVersion = 1;

// A problem of the input file; the message names the file and the key.
struct InputError : ProcessingError {
    using ProcessingError::ProcessingError;
};

const char* type_name(const json& value) {
    switch (value.type()) {
    case json::value_t::null:
        return "null";
    case json::value_t::object:
        return "an object";
    case json::value_t::array:
        return "an array";
    case json::value_t::string:
        return "a string";
    case json::value_t::boolean:
        return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
        return "an integer";
    case json::value_t::number_float:
        return "a number";
    default:
        return "not a JSON value";
    }
}

// What a key must hold.
enum class Kind { kObject, kArray, kString, kNumber, kCount, kObjectOrNull, kStringOrNull, kNumberOrNull };

const char* kind_name(Kind kind) {
    switch (kind) {
    case Kind::kObject:
        return "an object";
    case Kind::kArray:
        return "an array";
    case Kind::kString:
        return "a string";
    case Kind::kNumber:
        return "a number";
    case Kind::kCount:
        return "a non-negative integer";
    case Kind::kObjectOrNull:
        return "an object or null";
    case Kind::kStringOrNull:
        return "a string or null";
    case Kind::kNumberOrNull:
        return "a number or null";
    }
    return "?";
}

bool is_kind(const json& value, Kind kind) {
    switch (kind) {
    case Kind::kObject:
        return value.is_object();
    case Kind::kArray:
        return value.is_array();
    case Kind::kString:
        return value.is_string();
    case Kind::kNumber:
        return value.is_number();
    case Kind::kCount:
        return value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0);
    case Kind::kObjectOrNull:
        return value.is_object() || value.is_null();
    case Kind::kStringOrNull:
        return value.is_string() || value.is_null();
    case Kind::kNumberOrNull:
        return value.is_number() || value.is_null();
    }
    return false;
}

// Checks analysis.json against docs/analysis-output.md: the keys the report
// needs must be there with the right types; optional sections must have the
// right type when present.
class Validator {
public:
    explicit Validator(std::string file) : file_(std::move(file)) {}

    [[noreturn]] void fail(const std::string& message) const {
        throw InputError(fmt::format("{}: {}", file_, message));
    }

    const json& require(const json& object, const std::string& path, const char* key, Kind kind) const {
        const std::string where = join(path, key);
        const auto it = object.find(key);
        if (it == object.end()) {
            fail(fmt::format("missing key `{}`", where));
        }
        check(*it, where, kind);
        return *it;
    }

    // nullptr when absent.
    const json* optional(const json& object, const std::string& path, const char* key, Kind kind) const {
        const auto it = object.find(key);
        if (it == object.end()) {
            return nullptr;
        }
        check(*it, join(path, key), kind);
        return &*it;
    }

    void check(const json& value, const std::string& where, Kind kind) const {
        if (!is_kind(value, kind)) {
            fail(fmt::format("`{}` is {}, expected {}", where, type_name(value), kind_name(kind)));
        }
    }

    void validate(const json& doc) const {
        if (!doc.is_object()) {
            fail(fmt::format("the top level is {}, expected an object", type_name(doc)));
        }
        const json& format = require(doc, "", "format", Kind::kString);
        if (format.get<std::string>() != kFormat) {
            fail(fmt::format("`format` is \"{}\", expected \"{}\" (not written by `vmtrace analyze`?)",
                             format.get<std::string>(), kFormat));
        }
        const json& version = require(doc, "", "version", Kind::kCount);
        if (version.get<std::uint64_t>() != kVersion) {
            fail(fmt::format("unsupported `version` {} (this vmtrace reads version {})", version.dump(), kVersion));
        }
        const auto begin = require(doc, "", "begin_ns", Kind::kCount).get<std::uint64_t>();
        const auto end = require(doc, "", "end_ns", Kind::kCount).get<std::uint64_t>();
        if (end < begin) {
            fail("`end_ns` is before `begin_ns`");
        }
        require(doc, "", "host", Kind::kObjectOrNull);  // null: no host trace identified
        require(doc, "", "events", Kind::kObject);
        if (const json* warnings = optional(doc, "", "warnings", Kind::kArray)) {
            for (std::size_t i = 0; i < warnings->size(); ++i) {
                check((*warnings)[i], fmt::format("warnings[{}]", i), Kind::kString);
            }
        }
        const json& vms = require(doc, "", "vms", Kind::kArray);
        for (std::size_t i = 0; i < vms.size(); ++i) {
            validate_vm(vms[i], fmt::format("vms[{}]", i));
        }
    }

private:
    static std::string join(const std::string& path, const char* key) {
        return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
    }

    void validate_vm(const json& vm, const std::string& path) const {
        check(vm, path, Kind::kObject);
        require(vm, path, "name", Kind::kString);
        require(vm, path, "guest_trace", Kind::kStringOrNull);
        const json& sync = require(vm, path, "sync", Kind::kObjectOrNull);
        if (sync.is_object()) {
            require(sync, path + ".sync", "quality", Kind::kString);
            optional(sync, path + ".sync", "bound_ns", Kind::kNumberOrNull);
        }
        const json& vcpus = require(vm, path, "vcpus", Kind::kArray);
        for (std::size_t i = 0; i < vcpus.size(); ++i) {
            const std::string where = fmt::format("{}.vcpus[{}]", path, i);
            check(vcpus[i], where, Kind::kObject);
            require(vcpus[i], where, "vcpu", Kind::kCount);
            require(vcpus[i], where, "states_ns", Kind::kObject);
        }
        if (const json* exits = optional(vm, path, "exits", Kind::kArray)) {
            for (std::size_t i = 0; i < exits->size(); ++i) {
                const std::string where = fmt::format("{}.exits[{}]", path, i);
                check((*exits)[i], where, Kind::kObject);
                require((*exits)[i], where, "reason", Kind::kString);
                require((*exits)[i], where, "count", Kind::kCount);
            }
        }
        if (const json* histogram = optional(vm, path, "exit_histogram", Kind::kObject)) {
            require(*histogram, path + ".exit_histogram", "bounds_ns", Kind::kArray);
            require(*histogram, path + ".exit_histogram", "reasons", Kind::kObject);
        }
        optional(vm, path, "guest_threads", Kind::kArray);
        if (const json* migrations = optional(vm, path, "guest_migrations", Kind::kObjectOrNull);
            migrations != nullptr && migrations->is_object()) {
            optional(*migrations, path + ".guest_migrations", "matrix", Kind::kArray);
        }
        if (const json* placement = optional(vm, path, "placement", Kind::kObject)) {
            require(*placement, path + ".placement", "pcpus", Kind::kArray);
            require(*placement, path + ".placement", "residency_ns", Kind::kArray);
        }
        if (const json* coscheduling = optional(vm, path, "coscheduling", Kind::kObject)) {
            require(*coscheduling, path + ".coscheduling", "running_ns", Kind::kArray);
        }
        optional(vm, path, "nondet", Kind::kObject);
        optional(vm, path, "replay_log", Kind::kObject);
        validate_timeline(require(vm, path, "timeline", Kind::kObject), path + ".timeline");
    }

    void validate_timeline(const json& timeline, const std::string& path) const {
        const json& bin_ns = require(timeline, path, "bin_ns", Kind::kNumber);
        if (!(bin_ns.get<double>() > 0)) {
            fail(fmt::format("`{}.bin_ns` is {}, expected a positive number", path, bin_ns.dump()));
        }
        const auto bins = require(timeline, path, "bins", Kind::kCount).get<std::uint64_t>();
        const json& vcpus = require(timeline, path, "vcpus", Kind::kArray);
        for (std::size_t i = 0; i < vcpus.size(); ++i) {
            const std::string where = fmt::format("{}.vcpus[{}]", path, i);
            check(vcpus[i], where, Kind::kObject);
            require(vcpus[i], where, "vcpu", Kind::kCount);
            for (const char* state : {"guest", "hypervisor", "preempted", "idle"}) {
                const json& fractions = require(vcpus[i], where, state, Kind::kArray);
                if (fractions.size() != bins) {
                    fail(fmt::format("`{}.{}` has {} values, but `{}.bins` is {}", where, state, fractions.size(), path,
                                     bins));
                }
                for (std::size_t b = 0; b < fractions.size(); ++b) {
                    check(fractions[b], fmt::format("{}.{}[{}]", where, state, b), Kind::kNumber);
                }
            }
        }
    }

    std::string file_;
};

// Nanoseconds as seconds with all nine decimals, exact.
std::string seconds_text(std::uint64_t ns) {
    return fmt::format("{}.{:09}", ns / 1'000'000'000U, ns % 1'000'000'000U);
}

std::string utc_now() {
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string html_escape(std::string_view text) {
    std::string out;
    for (const char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

// JSON that is safe inside <script type="application/json">: `<` only
// occurs in JSON strings, where \u003c means the same, so no `</script>`
// or `<!--` can end or alter the element.
std::string script_json(const json& data) {
    const std::string text = data.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (c == '<') {
            out += "\\u003c";
        } else {
            out += c;
        }
    }
    return out;
}

// The template with each marker replaced once; the inserted texts are not
// searched for markers.
std::string fill_template(std::string_view html, const std::vector<std::pair<std::string, std::string>>& values) {
    std::string out;
    std::size_t pos = 0;
    while (true) {
        std::size_t next = std::string_view::npos;
        const std::pair<std::string, std::string>* found = nullptr;
        for (const auto& value : values) {
            const std::size_t at = html.find(value.first, pos);
            if (at < next) {
                next = at;
                found = &value;
            }
        }
        if (found == nullptr) {
            out.append(html.substr(pos));
            return out;
        }
        out.append(html.substr(pos, next - pos));
        out.append(found->second);
        pos = next + found->first.size();
    }
}

std::string render(const json& analysis, const std::string& source) {
    using report::kReport_report_css;
    using report::kReport_report_html;
    using report::kReport_report_js;
    // The template's own script and style must not close their elements.
    if (kReport_report_js.find("</") != std::string_view::npos ||
        kReport_report_css.find("</") != std::string_view::npos) {
        throw std::logic_error("the embedded report script or style sheet contains `</`");
    }
    const auto begin = analysis["begin_ns"].get<std::uint64_t>();
    const auto end = analysis["end_ns"].get<std::uint64_t>();
    const json meta = {{"source", source},
                       {"generated", utc_now()},
                       {"vmtrace_version", VMTRACE_VERSION},
                       {"begin_s", seconds_text(begin)},
                       {"end_s", seconds_text(end)},
                       {"duration_ns", end - begin}};
    const json data = {{"report", meta}, {"analysis", analysis}};
    std::string title = "vmtrace report";
    if (const auto host = analysis["host"].find("hostname");
        host != analysis["host"].end() && host->is_string() && !host->get<std::string>().empty()) {
        title += " \u2014 " + host->get<std::string>();
    }
    return fill_template(kReport_report_html, {{"@VMTRACE_TITLE@", html_escape(title)},
                                               {"/*@VMTRACE_CSS@*/", std::string(kReport_report_css)},
                                               {"/*@VMTRACE_JS@*/", std::string(kReport_report_js)},
                                               {"@VMTRACE_DATA@", script_json(data)}});
}

json read_analysis(const fs::path& file) {
    std::error_code ec;
    const auto status = fs::status(file, ec);
    if (!fs::exists(status)) {
        throw InputError(fmt::format("{}: no such file (`vmtrace analyze` writes it)", file.string()));
    }
    // Reading a FIFO or a device would block or never end.
    if (!fs::is_regular_file(status)) {
        throw InputError(fmt::format("{}: not a regular file", file.string()));
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw InputError(fmt::format("{}: cannot read", file.string()));
    }
    json doc;
    try {
        doc = json::parse(in);
    } catch (const json::parse_error& e) {
        std::string what = e.what();
        if (const auto close = what.find("] "); what.rfind("[json.exception", 0) == 0 && close != std::string::npos) {
            what.erase(0, close + 2);
        }
        throw InputError(fmt::format("{}: not valid JSON: {}", file.string(), what));
    }
    Validator(file.string()).validate(doc);
    return doc;
}

// Refuses to replace anything but a regular file, or the input itself.
void check_output(const fs::path& file, const fs::path& input) {
    std::error_code ec;
    const auto status = fs::status(file, ec);
    if (!fs::exists(status)) {
        return;
    }
    if (!fs::is_regular_file(status)) {
        throw UsageError(fmt::format("{}: exists and is not a regular file: not replaced", file.string()));
    }
    if (fs::equivalent(file, input, ec)) {
        throw UsageError(fmt::format("{}: is the input: not replaced", file.string()));
    }
}

void write_file(const fs::path& file, const std::string& text) {
    // A name of this process's own beside the file: an existing `FILE.tmp`
    // (or a link named so) is never written through.
    const fs::path temporary = fmt::format("{}.{}.tmp", file.string(), getpid());
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        if (!out) {
            const int err = errno;
            const std::string text_error = fmt::format("{}: cannot write: {}", file.string(),
                                                       std::error_code(err, std::generic_category()).message());
            if (err == EACCES || err == EPERM || err == EROFS) {
                throw SystemError(text_error);
            }
            throw InputError(text_error);
        }
        out << text;
        out.close();
        if (!out) {
            throw InputError(fmt::format("{}: cannot write", file.string()));
        }
    }
    std::error_code ec;
    fs::rename(temporary, file, ec);
    if (ec) {
        fs::remove(temporary, ec);
        throw InputError(fmt::format("{}: cannot write: {}", file.string(), ec.message()));
    }
}

}  // namespace

int report_command(const std::vector<std::string>& args) {
    po::options_description options("vmtrace report ANALYSIS_DIR [-o FILE.html]");
    options.add_options()("help,h", "show this help")("output,o", po::value<std::string>(),
                                                      "the HTML file to write (default ANALYSIS_DIR/report.html)");
    po::options_description hidden;
    hidden.add_options()("analysis", po::value<std::string>(), "");
    po::options_description all;
    all.add(options).add(hidden);
    po::positional_options_description positional;
    positional.add("analysis", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help") != 0) {
        std::cout << options
                  << "\nWrites the analyses of ANALYSIS_DIR/analysis.json (written by `vmtrace analyze`) as one\n"
                     "self-contained HTML file: vCPU state timelines, exits, migrations, synchronisation.\n";
        return 0;
    }
    if (vm.count("analysis") == 0) {
        throw UsageError("report needs an analysis directory (written by `vmtrace analyze`)");
    }
    const fs::path arg = vm["analysis"].as<std::string>();
    std::error_code ec;
    fs::path input;
    if (fs::is_directory(arg, ec)) {
        input = arg / "analysis.json";
    } else if (fs::is_regular_file(arg, ec)) {
        input = arg;  // analysis.json itself
    } else if (fs::exists(arg, ec)) {
        throw UsageError(fmt::format("{}: not a directory nor a regular file", arg.string()));
    } else {
        throw UsageError(fmt::format("{}: not a directory", arg.string()));
    }
    const fs::path output =
        vm.count("output") != 0 ? fs::path(vm["output"].as<std::string>()) : input.parent_path() / "report.html";

    check_output(output, input);
    const json analysis = read_analysis(input);
    write_file(output, render(analysis, fs::absolute(input).lexically_normal().string()));
    std::cout << "vmtrace report: wrote " << fs::absolute(output).lexically_normal().string() << "\n";
    return 0;
}

}  // namespace vmtrace::cli
