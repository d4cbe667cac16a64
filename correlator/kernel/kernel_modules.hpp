// SPDX-License-Identifier: MIT
// vmtrace's kernel probe modules (kmod/) as `vmtrace modules` sees them:
// their parameters, checking PARAM=VALUE arguments, their state in sysfs,
// and loading/unloading through libkmod.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

struct kmod_ctx;

namespace vmtrace::modules {

enum class Side { host, guest };

// One parameter a module accepts, as kmod/*.c declares and checks it.
struct ParamSpec {
    enum class Kind { boolean, unsigned_integer };
    const char* name;
    Kind kind;
    std::uint64_t min;  // unsigned_integer only
    std::uint64_t max;
    const char* description;
};

struct ModuleSpec {
    Side side;
    const char* name;  // as modprobe spells it: lttng-probe-vmtrace-host
    std::span<const ParamSpec> params;
};

const ModuleSpec& module_spec(Side side);
std::span<const ModuleSpec> our_modules();

// The module that owns the vmsync events: the host and the guest module
// fire them, so both depend on it (modprobe and libkmod load it first), and
// a kernel that is both a KVM host and a guest loads all three.
inline constexpr const char* kVmsyncModule = "lttng-probe-vmtrace-vmsync";

// The name the kernel uses in /sys/module: dashes become underscores.
std::string kernel_name(const std::string& module);

// One parameter of the module's own modinfo (`parm=` and `parmtype=`).
struct ModinfoParam {
    std::string name;
    std::string type;  // empty when the module gives none (module_param_cb)
    std::string description;
};

// The events a module file offers and those its build left out because the
// kernel's prototypes differ from the probe's (modinfo `vmtrace_event` and
// `vmtrace_left_out`, "EVENT: reason"), as kmod/ writes them.
struct ModuleEvents {
    std::vector<std::string> offered;
    std::vector<std::pair<std::string, std::string>> left_out;  // event, reason
};

// Checks PARAM=VALUE arguments (a bare boolean name means PARAM=Y) and
// returns them as the option string the kernel takes.  Names are checked
// against the module's modinfo when it was read, else against `spec`;
// values against `spec`'s ranges, or the modinfo type for a parameter that
// only the modinfo knows.  Throws cli::UsageError naming the parameter.
std::string check_parameters(const ModuleSpec& spec, const std::vector<std::string>& args,
                             const std::optional<std::vector<ModinfoParam>>& modinfo);

// Whether the running kernel loads modules at all (/proc/modules exists).
bool kernel_has_module_support();

// Where the kernel lists modules: /sys/module, or VMTRACE_SYS_MODULE_DIR.
std::string sys_module_dir();

// What /sys/module/NAME tells about a module.
struct KernelModuleState {
    std::string name;       // kernel name (underscores)
    bool present = false;   // /sys/module/NAME exists: loaded or built in
    std::string initstate;  // "live", "coming", "going"; empty when built in
    std::optional<int> refcnt;
    std::map<std::string, std::string> parameters;  // readable ones
};
KernelModuleState kernel_module_state(const std::string& module);

// Loaded modules whose kernel name starts with `prefix`, sorted.
std::vector<std::string> loaded_modules_with_prefix(const std::string& prefix);

// libkmod for one modules directory (/lib/modules/`uname -r` by default).
class Kmod {
public:
    explicit Kmod(const std::optional<std::string>& dirname);
    ~Kmod();
    Kmod(const Kmod&) = delete;
    Kmod& operator=(const Kmod&) = delete;

    std::string dirname() const;

    // The module's file, or nullopt when the modules directory has no such module.
    std::optional<std::string> find(const std::string& module);

    // The module's parameters from its modinfo, nullopt when it is not found
    // or its file cannot be read.
    std::optional<std::vector<ModinfoParam>> parameters(const std::string& module);

    // The events of the module's file, nullopt when it is not found or its
    // file cannot be read.
    std::optional<ModuleEvents> events(const std::string& module);

    // Inserts the module and what it needs (modules.dep dependencies and
    // softdeps), like modprobe.  Throws cli::SystemError with one line.
    // Returns false when it was already loaded.
    bool load(const std::string& module, const std::string& options);

    // Removes the module.  Returns false when it was not loaded.  Throws
    // cli::SystemError when it is in use or the kernel refuses.
    bool unload(const std::string& module);

private:
    ::kmod_ctx* ctx_;
};

}  // namespace vmtrace::modules
