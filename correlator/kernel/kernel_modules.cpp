// SPDX-License-Identifier: MIT
#include "kernel_modules.hpp"

#include <fcntl.h>
#include <libkmod.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "cli_common.hpp"
#include "vmtrace/params.h"

namespace fs = std::filesystem;

namespace vmtrace::modules {
namespace {

using cli::SystemError;
using cli::UsageError;
using Kind = ParamSpec::Kind;

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

// The numeric parameters' ranges and descriptions are the modules' own
// (kmod/include/vmtrace/params.h).
constexpr ParamSpec kHostParams[] = {
    {"hc_nr", Kind::unsigned_integer, VMTRACE_HOST_HC_NR_MIN, VMTRACE_HOST_HC_NR_MAX, VMTRACE_HOST_HC_NR_DESC},
    {"tdp_mmu_map", Kind::boolean, 0, 0, "hook TDP MMU mapping changes (kvm_tdp_mmu_map events)"},
};
constexpr ParamSpec kGuestParams[] = {
    {"hc_nr", Kind::unsigned_integer, VMTRACE_GUEST_HC_NR_MIN, VMTRACE_GUEST_HC_NR_MAX, VMTRACE_GUEST_HC_NR_DESC},
    {"period_ms", Kind::unsigned_integer, VMTRACE_GUEST_PERIOD_MS_MIN, VMTRACE_GUEST_PERIOD_MS_MAX,
     VMTRACE_GUEST_PERIOD_MS_DESC},
    {"vm_uid", Kind::unsigned_integer, 0, kU64Max, "VM identifier; 0: from the DMI product UUID, else random"},
    {"mm_events", Kind::boolean, 0, 0, "record guest_mm_map/guest_mm_unmap events"},
};
const ModuleSpec kModules[] = {
    {Side::host, "lttng-probe-vmtrace-host", kHostParams},
    {Side::guest, "lttng-probe-vmtrace-guest", kGuestParams},
};

std::string range_text(std::uint64_t min, std::uint64_t max) {
    if (max > 0xffff) {
        return fmt::format("{:#x}..{:#x}", min, max);
    }
    return fmt::format("{}..{}", min, max);
}

// kstrtobool: what the kernel's bool parameters accept.
bool is_bool(const std::string& v) {
    static const std::set<std::string> accepted = {"y", "Y", "yes", "1", "n", "N", "no", "0", "on", "off"};
    return accepted.count(v) != 0;
}

// kstrtoull with base 0: 0x hex, leading 0 octal, else decimal.
std::optional<std::uint64_t> parse_unsigned(const std::string& v) {
    std::string s = v.size() > 1 && v[0] == '+' ? v.substr(1) : v;
    if (s.empty()) {
        return std::nullopt;
    }
    int base = 10;
    std::size_t start = 0;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        start = 2;
    } else if (s.size() > 1 && s[0] == '0') {
        base = 8;
        start = 1;
    }
    unsigned __int128 value = 0;
    for (std::size_t i = start; i < s.size(); ++i) {
        const char c = s[i];
        int digit = -1;
        if (c >= '0' && c <= '9') {
            digit = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            digit = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            digit = c - 'A' + 10;
        }
        if (digit < 0 || digit >= base) {
            return std::nullopt;
        }
        value = value * base + digit;
        if (value > kU64Max) {
            return std::nullopt;
        }
    }
    return static_cast<std::uint64_t>(value);
}

// The accepted range of a modinfo `parmtype` the kernel parses as an integer.
struct TypeRange {
    const char* type;
    bool is_signed;
    std::uint64_t max;
};
constexpr TypeRange kTypeRanges[] = {
    {"byte", false, 0xff},     {"ushort", false, 0xffff},          {"uint", false, 0xffffffff},
    {"ulong", false, kU64Max}, {"ullong", false, kU64Max},         {"short", true, 0x7fff},
    {"int", true, 0x7fffffff}, {"long", true, 0x7fffffffffffffff},
};

void check_value(const std::string& module, const std::string& name, const std::string& value, const ParamSpec* spec,
                 const std::string& modinfo_type) {
    if (spec != nullptr && spec->kind == Kind::boolean) {
        if (!is_bool(value)) {
            throw UsageError(fmt::format("{}: {}={} is not a boolean (Y, N, 1, 0, on, off)", module, name, value));
        }
        return;
    }
    if (spec != nullptr) {
        const auto v = parse_unsigned(value);
        if (!v && spec->min == 0 && spec->max == kU64Max) {
            throw UsageError(fmt::format("{}: {}={} is not an unsigned 64-bit number", module, name, value));
        }
        if (!v || *v < spec->min || *v > spec->max) {
            throw UsageError(
                fmt::format("{}: {}={} refused: must be {}", module, name, value, range_text(spec->min, spec->max)));
        }
        return;
    }
    // A parameter only the module's modinfo knows: check what its type can hold.
    if (modinfo_type == "bool" || modinfo_type == "invbool") {
        if (!is_bool(value)) {
            throw UsageError(fmt::format("{}: {}={} is not a boolean (Y, N, 1, 0, on, off)", module, name, value));
        }
        return;
    }
    for (const TypeRange& range : kTypeRanges) {
        if (modinfo_type == range.type) {
            const bool negative = !value.empty() && value[0] == '-';
            const auto v = parse_unsigned(negative ? value.substr(1) : value);
            const bool ok = v && (negative ? range.is_signed && *v <= range.max + 1 : *v <= range.max);
            if (!ok) {
                throw UsageError(fmt::format("{}: {}={} is not a valid {}", module, name, value, modinfo_type));
            }
            return;
        }
    }
}

std::string read_first_line(const fs::path& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

void silent_log(void*, int, const char*, int, const char*, const char*, va_list) {}

// The kernel log from now on: after a refusal, the kernel's reason.
class KernelLog {
public:
    KernelLog() : fd_(::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)) {
        if (fd_ >= 0) {
            ::lseek(fd_, 0, SEEK_END);
        }
    }
    ~KernelLog() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    KernelLog(const KernelLog&) = delete;
    KernelLog& operator=(const KernelLog&) = delete;

    // The last new line mentioning the module ("NAME: ..." by pr_fmt, or
    // the kernel's own "NAME: Unknown symbol ...").
    std::optional<std::string> last_about(const std::string& module) {
        if (fd_ < 0) {
            return std::nullopt;
        }
        const std::string kname = kernel_name(module);
        std::optional<std::string> found;
        std::array<char, 8192> record{};
        for (;;) {
            const ssize_t n = ::read(fd_, record.data(), record.size() - 1);
            if (n < 0 && errno == EPIPE) {
                continue;  // overwritten records: read on
            }
            if (n <= 0) {
                break;
            }
            std::string text(record.data(), static_cast<std::size_t>(n));
            const auto semicolon = text.find(';');
            text = semicolon == std::string::npos ? text : text.substr(semicolon + 1);
            text = text.substr(0, text.find('\n'));
            if (text.find(kname) != std::string::npos || text.find(module) != std::string::npos) {
                found = text;
            }
        }
        return found;
    }

private:
    int fd_;
};

struct ModuleList {
    kmod_list* list = nullptr;
    ~ModuleList() {
        if (list != nullptr) {
            kmod_module_unref_list(list);
        }
    }
};

struct InfoList {
    kmod_list* list = nullptr;
    ~InfoList() {
        if (list != nullptr) {
            kmod_module_info_free_list(list);
        }
    }
};

struct ModuleRef {
    kmod_module* mod = nullptr;
    ~ModuleRef() {
        if (mod != nullptr) {
            kmod_module_unref(mod);
        }
    }
};

// The module libkmod finds under `name` (aliases, modules.dep, built in).
void lookup(kmod_ctx* ctx, const std::string& name, ModuleRef& out) {
    ModuleList found;
    if (kmod_module_new_from_lookup(ctx, name.c_str(), &found.list) < 0 || found.list == nullptr) {
        return;
    }
    out.mod = kmod_module_get_module(found.list);
}

// The module libkmod is inserting: print_action has no user data.
thread_local std::string current_insert;

void note_action(kmod_module* m, bool, const char*) {
    current_insert = kmod_module_get_name(m);
}

std::string no_support_text() {
    return "this kernel has no loadable module support (/proc/modules is missing): use a kernel built with "
           "CONFIG_MODULES, or run the probes in a lab kernel (kmod/README.md)";
}

}  // namespace

const ModuleSpec& module_spec(Side side) {
    return kModules[side == Side::host ? 0 : 1];
}

std::span<const ModuleSpec> our_modules() {
    return kModules;
}

std::string kernel_name(const std::string& module) {
    std::string out = module;
    std::replace(out.begin(), out.end(), '-', '_');
    return out;
}

std::string check_parameters(const ModuleSpec& spec, const std::vector<std::string>& args,
                             const std::optional<std::vector<ModinfoParam>>& modinfo) {
    std::vector<std::string> known;
    if (modinfo) {
        for (const ModinfoParam& p : *modinfo) {
            known.push_back(p.name);
        }
    } else {
        for (const ParamSpec& p : spec.params) {
            known.push_back(p.name);
        }
    }
    std::set<std::string> seen;
    std::string options;
    for (const std::string& arg : args) {
        const auto eq = arg.find('=');
        const std::string name = kernel_name(arg.substr(0, eq));
        std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
        if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
                                std::string::npos) {
            throw UsageError(fmt::format("`{}` is not a module parameter (PARAM=VALUE)", arg));
        }
        if (std::find(known.begin(), known.end(), name) == known.end()) {
            throw UsageError(
                fmt::format("{} has no parameter `{}` (it takes: {})", spec.name, name,
                            known.empty() ? std::string("none") : fmt::format("{}", fmt::join(known, ", "))));
        }
        if (!seen.insert(name).second) {
            throw UsageError(fmt::format("{}: parameter `{}` given twice", spec.name, name));
        }
        const ParamSpec* param_spec = nullptr;
        for (const ParamSpec& p : spec.params) {
            if (name == p.name) {
                param_spec = &p;
            }
        }
        std::string modinfo_type;
        if (modinfo) {
            for (const ModinfoParam& p : *modinfo) {
                if (p.name == name) {
                    modinfo_type = p.type;
                }
            }
        }
        const bool boolean = (param_spec != nullptr && param_spec->kind == Kind::boolean) ||
                             (param_spec == nullptr && (modinfo_type == "bool" || modinfo_type == "invbool"));
        if (eq == std::string::npos) {
            if (!boolean) {
                throw UsageError(fmt::format("{}: parameter `{}` needs a value ({}=VALUE)", spec.name, name, name));
            }
            value = "Y";
        }
        check_value(spec.name, name, value, param_spec, modinfo_type);
        options += fmt::format("{}{}={}", options.empty() ? "" : " ", name, value);
    }
    return options;
}

bool kernel_has_module_support() {
    std::error_code ec;
    return fs::exists("/proc/modules", ec);
}

std::string sys_module_dir() {
    if (const char* env = std::getenv("VMTRACE_SYS_MODULE_DIR")) {
        return env;
    }
    return "/sys/module";
}

KernelModuleState kernel_module_state(const std::string& module) {
    KernelModuleState state;
    state.name = kernel_name(module);
    const fs::path dir = fs::path(sys_module_dir()) / state.name;
    std::error_code ec;
    state.present = fs::is_directory(dir, ec);
    if (!state.present) {
        return state;
    }
    if (fs::exists(dir / "initstate", ec)) {
        state.initstate = read_first_line(dir / "initstate");
    }
    if (fs::exists(dir / "refcnt", ec)) {
        try {
            state.refcnt = std::stoi(read_first_line(dir / "refcnt"));
        } catch (const std::exception&) {
        }
    }
    for (auto it = fs::directory_iterator(dir / "parameters", ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        std::ifstream in(it->path());
        std::string value;
        if (in && std::getline(in, value)) {
            state.parameters[it->path().filename().string()] = value;
        }
    }
    return state;
}

std::vector<std::string> loaded_modules_with_prefix(const std::string& prefix) {
    std::vector<std::string> found;
    std::error_code ec;
    for (auto it = fs::directory_iterator(sys_module_dir(), ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.rfind(prefix, 0) == 0) {
            found.push_back(name);
        }
    }
    std::sort(found.begin(), found.end());
    return found;
}

Kmod::Kmod(const std::optional<std::string>& dirname) : ctx_(kmod_new(dirname ? dirname->c_str() : nullptr, nullptr)) {
    if (ctx_ == nullptr) {
        throw SystemError("cannot initialise libkmod");
    }
    kmod_set_log_fn(ctx_, silent_log, nullptr);
}

Kmod::~Kmod() {
    kmod_unref(ctx_);
}

std::string Kmod::dirname() const {
    const char* d = kmod_get_dirname(ctx_);
    return d != nullptr ? d : "";
}

std::optional<std::string> Kmod::find(const std::string& module) {
    ModuleRef mod;
    lookup(ctx_, module, mod);
    if (mod.mod == nullptr || kmod_module_get_path(mod.mod) == nullptr) {
        return std::nullopt;
    }
    return std::string(kmod_module_get_path(mod.mod));
}

namespace {

// Every key=value of the module file's modinfo, in order; nullopt when the
// module is not found or its file cannot be read.
std::optional<std::vector<std::pair<std::string, std::string>>> modinfo(kmod_ctx* ctx, const std::string& module) {
    ModuleRef mod;
    lookup(ctx, module, mod);
    if (mod.mod == nullptr || kmod_module_get_path(mod.mod) == nullptr) {
        return std::nullopt;
    }
    InfoList info;
    if (kmod_module_get_info(mod.mod, &info.list) < 0) {
        return std::nullopt;
    }
    std::vector<std::pair<std::string, std::string>> entries;
    kmod_list* l = nullptr;
    kmod_list_foreach(l, info.list) {
        const char* raw = kmod_module_info_get_value(l);
        entries.emplace_back(kmod_module_info_get_key(l), raw != nullptr ? raw : "");
    }
    return entries;
}

}  // namespace

std::optional<std::vector<ModinfoParam>> Kmod::parameters(const std::string& module) {
    const auto entries = modinfo(ctx_, module);
    if (!entries) {
        return std::nullopt;
    }
    std::vector<ModinfoParam> params;
    auto entry_for = [&params](const std::string& name) -> ModinfoParam& {
        for (ModinfoParam& p : params) {
            if (p.name == name) {
                return p;
            }
        }
        params.push_back({name, "", ""});
        return params.back();
    };
    for (const auto& [key, value] : *entries) {
        const auto colon = value.find(':');
        if (colon == std::string::npos || (key != "parm" && key != "parmtype")) {
            continue;
        }
        ModinfoParam& p = entry_for(value.substr(0, colon));
        (key == "parm" ? p.description : p.type) = value.substr(colon + 1);
    }
    return params;
}

std::optional<ModuleEvents> Kmod::events(const std::string& module) {
    const auto entries = modinfo(ctx_, module);
    if (!entries) {
        return std::nullopt;
    }
    ModuleEvents events;
    for (const auto& [key, value] : *entries) {
        if (key == "vmtrace_event") {
            events.offered.push_back(value);
        } else if (key == "vmtrace_left_out") {
            const auto colon = value.find(':');
            const std::string reason = colon == std::string::npos ? "" : value.substr(colon + 1);
            const auto start = reason.find_first_not_of(' ');
            events.left_out.emplace_back(value.substr(0, colon),
                                         start == std::string::npos ? "" : reason.substr(start));
        }
    }
    return events;
}

bool Kmod::load(const std::string& module, const std::string& options) {
    if (!kernel_has_module_support()) {
        throw SystemError(fmt::format("cannot load {}: {}", module, no_support_text()));
    }
    ModuleRef mod;
    lookup(ctx_, module, mod);
    if (mod.mod == nullptr) {
        throw SystemError(
            fmt::format("{} is not installed in {}: build and install it (kmod/README.md: make, "
                        "then make modules_install or DKMS), or give --dirname",
                        module, dirname()));
    }
    KernelLog log;
    current_insert = module;
    const int err = kmod_module_probe_insert_module(mod.mod, KMOD_PROBE_FAIL_ON_LOADED, options.c_str(), nullptr,
                                                    nullptr, note_action);
    if (err == -EEXIST) {
        return false;
    }
    if (err > 0) {
        throw SystemError(fmt::format("{} is blacklisted in /etc/modprobe.d: remove it from there to load it", module));
    }
    if (err == 0) {
        return true;
    }
    const std::string failed = current_insert.empty() ? module : current_insert;
    const std::string what =
        kernel_name(failed) == kernel_name(module) ? failed : fmt::format("{} (needed by {})", failed, module);
    const auto message = log.last_about(failed);
    const std::string kernel_says = message ? fmt::format(": the kernel says \"{}\"", *message) : "";
    switch (-err) {
    case EPERM:
    case EACCES:
        throw SystemError(
            fmt::format("cannot load {}: permission denied{}; loading modules needs root "
                        "(CAP_SYS_MODULE), and a signed module under Secure Boot or lockdown",
                        what, kernel_says));
    case ENOSYS:
        throw SystemError(fmt::format("cannot load {}: {}", what, no_support_text()));
    case ENOEXEC:
        throw SystemError(
            fmt::format("cannot load {}: not built for this kernel (Exec format error){}; rebuild it "
                        "against this kernel's headers",
                        what, kernel_says));
    case ENOENT:
        throw SystemError(
            fmt::format("cannot load {}: a file or symbol it needs is missing{}; build it against the "
                        "lttng-modules installed for this kernel",
                        what, kernel_says));
    case EINVAL:
        throw SystemError(fmt::format(
            "the kernel refused {} (Invalid argument){}; {}", what, message ? kernel_says : ": see `dmesg | tail`",
            options.empty() ? "check the kernel version it was built for" : "check the parameters"));
    default:
        throw SystemError(fmt::format("the kernel refused {} ({}){}", what, std::strerror(-err),
                                      message ? kernel_says : "; see `dmesg | tail`"));
    }
}

bool Kmod::unload(const std::string& module) {
    if (!kernel_has_module_support()) {
        throw SystemError(fmt::format("cannot unload {}: {}", module, no_support_text()));
    }
    ModuleRef mod;
    if (kmod_module_new_from_name(ctx_, module.c_str(), &mod.mod) < 0) {
        throw SystemError(fmt::format("cannot unload {}: libkmod refused the name", module));
    }
    const int state = kmod_module_get_initstate(mod.mod);
    if (state < 0) {
        return false;
    }
    if (state == KMOD_MODULE_BUILTIN) {
        throw SystemError(fmt::format("cannot unload {}: it is built into the kernel", module));
    }
    const int err = kmod_module_remove_module(mod.mod, 0);
    if (err == 0) {
        return true;
    }
    switch (-err) {
    case ENOENT:
        return false;
    case EPERM:
    case EACCES:
        throw SystemError(
            fmt::format("cannot unload {}: permission denied; unloading modules needs root "
                        "(CAP_SYS_MODULE)",
                        module));
    case EBUSY:
    case EAGAIN:
        throw SystemError(
            fmt::format("cannot unload {}: in use (refcount {}); destroy the LTTng sessions recording "
                        "its events first (`lttng list`, `lttng destroy SESSION`)",
                        module, kmod_module_get_refcnt(mod.mod)));
    default:
        throw SystemError(fmt::format("the kernel refused to unload {} ({})", module, std::strerror(-err)));
    }
}

}  // namespace vmtrace::modules
