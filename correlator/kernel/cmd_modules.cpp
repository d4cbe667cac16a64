// SPDX-License-Identifier: MIT
// `vmtrace modules load|unload|status`: vmtrace's kernel probe modules
// through libkmod.
#include <fmt/format.h>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <iostream>
#include <optional>

#include "cli_common.hpp"
#include "kernel_modules.hpp"

namespace po = boost::program_options;

namespace vmtrace::cli {
namespace {

using modules::Kmod;
using modules::ModuleSpec;
using modules::Side;

constexpr const char* kSynopsis =
    "usage: vmtrace modules load --host|--guest [--dirname DIR] [PARAM=VALUE ...]\n"
    "       vmtrace modules unload [--host|--guest] [--dirname DIR]\n"
    "       vmtrace modules status [--json] [--dirname DIR]\n";

std::string parameter_help() {
    std::string text;
    for (const ModuleSpec& spec : modules::our_modules()) {
        text += fmt::format("{} ({}):\n", spec.name, spec.side == Side::host ? "--host" : "--guest");
        for (const modules::ParamSpec& p : spec.params) {
            std::string accepted =
                p.max > 0xffff ? fmt::format("{:#x}..{:#x}", p.min, p.max) : fmt::format("{}..{}", p.min, p.max);
            if (p.kind == modules::ParamSpec::Kind::boolean) {
                accepted = "Y|N";
            } else if (p.min == 0 && p.max == ~std::uint64_t{0}) {
                accepted = "any 64-bit value";
            }
            text += fmt::format("  {:<12} {:<24} {}\n", p.name, accepted, p.description);
        }
    }
    return text;
}

void print_help(const po::options_description& options) {
    std::cout << kSynopsis << "\n"
              << options << "\n"
              << "load   inserts the host or guest probe module and what it needs (lttng-probe-vmtrace-vmsync,\n"
              << "       lttng-tracer, kvm), like modprobe; a machine that is both a KVM host and a guest loads both;\n"
              << "       PARAM=VALUE are checked against the module's own parameter list before the kernel sees them\n"
              << "unload removes it (both, when neither --host nor --guest is given), and lttng-probe-vmtrace-vmsync\n"
              << "       once nothing uses it\n"
              << "status which of vmtrace's and LTTng's modules are loaded, with their parameters, and which\n"
              << "       events each installed module offers (a probe that does not fit the kernel is left out)\n\n"
              << "parameters:\n"
              << parameter_help() << "\n"
              << "exit status: 0 done, 2 bad usage or parameter, 4 the system refused (no module support,\n"
              << "module not installed, permission, the kernel refused it: one line says which)\n";
}

std::optional<std::string> dirname_option(const po::variables_map& vm) {
    if (vm.count("dirname") != 0) {
        return vm["dirname"].as<std::string>();
    }
    return std::nullopt;
}

std::vector<const ModuleSpec*> chosen_sides(const po::variables_map& vm, bool need_one) {
    const bool host = vm.count("host") != 0;
    const bool guest = vm.count("guest") != 0;
    if (host && guest) {
        throw UsageError(
            "modules: --host and --guest exclude each other (one module per command, their parameters differ; a "
            "machine that is both host and guest loads them one after the other)");
    }
    if (need_one && !host && !guest) {
        throw UsageError("modules load needs --host or --guest");
    }
    std::vector<const ModuleSpec*> chosen;
    if (host || !guest) {
        chosen.push_back(&modules::module_spec(Side::host));
    }
    if (guest || !host) {
        chosen.push_back(&modules::module_spec(Side::guest));
    }
    return chosen;
}

std::string parameters_text(const modules::KernelModuleState& state) {
    std::vector<std::string> items;
    for (const auto& [name, value] : state.parameters) {
        items.push_back(fmt::format("{}={}", name, value));
    }
    return fmt::format("{}", fmt::join(items, " "));
}

// The vm_uid the guest module uses, as the traces carry it.
std::optional<std::string> vm_uid_text(const modules::KernelModuleState& state) {
    const auto it = state.parameters.find("vm_uid");
    if (it == state.parameters.end()) {
        return std::nullopt;
    }
    try {
        return fmt::format("{:#018x}", std::stoull(it->second, nullptr, 0));
    } catch (const std::exception&) {
        return it->second;
    }
}

int load(const po::variables_map& vm, const std::vector<std::string>& params) {
    const ModuleSpec& spec = *chosen_sides(vm, true).front();
    Kmod kmod(dirname_option(vm));
    // The module's own parameter list when its file is there; ours otherwise.
    const auto modinfo = kmod.parameters(spec.name);
    const std::string options = modules::check_parameters(spec, params, modinfo);
    if (spec.side == Side::host && modules::kernel_has_module_support() &&
        !modules::kernel_module_state("kvm_amd").present && !modules::kernel_module_state("kvm_intel").present) {
        throw SystemError(
            fmt::format("cannot load {}: neither kvm_amd nor kvm_intel is loaded; load the one for "
                        "this CPU first (modprobe kvm_amd)",
                        spec.name));
    }
    if (!kmod.load(spec.name, options)) {
        if (!options.empty()) {
            throw SystemError(
                fmt::format("{} is already loaded with other parameters ({}); unload it first "
                            "(vmtrace modules unload)",
                            spec.name, parameters_text(modules::kernel_module_state(spec.name))));
        }
        std::cout << spec.name << ": already loaded\n";
        return 0;
    }
    const auto state = modules::kernel_module_state(spec.name);
    std::cout << spec.name << ": loaded";
    if (!state.parameters.empty()) {
        std::cout << " (" << parameters_text(state) << ")";
    }
    std::cout << "\n";
    if (spec.side == Side::guest) {
        if (const auto uid = vm_uid_text(state)) {
            std::cout << "vm_uid: " << *uid << "\n";
        }
    }
    return 0;
}

int unload(const po::variables_map& vm) {
    Kmod kmod(dirname_option(vm));
    for (const ModuleSpec* spec : chosen_sides(vm, false)) {
        const bool removed = kmod.unload(spec->name);
        std::cout << spec->name << (removed ? ": unloaded\n" : ": not loaded\n");
    }
    // The vmsync module goes with the last module that fires its events,
    // unless a session still records them.
    const auto vmsync = modules::kernel_module_state(modules::kVmsyncModule);
    if (vmsync.present && !vmsync.initstate.empty()) {
        if (vmsync.refcnt.value_or(0) == 0) {
            kmod.unload(modules::kVmsyncModule);
            std::cout << modules::kVmsyncModule << ": unloaded\n";
        } else {
            std::cout << modules::kVmsyncModule
                      << fmt::format(
                             ": kept (used by {}: the other side's module or a session recording vmsync "
                             "events)\n",
                             *vmsync.refcnt);
        }
    }
    return 0;
}

// One module's lines of `modules status` and its JSON object.
nlohmann::json module_status(Kmod& kmod, const std::string& name, const char* side, std::string& text) {
    const auto state = modules::kernel_module_state(name);
    const auto file = kmod.find(name);
    nlohmann::json m;
    m["name"] = name;
    m["side"] = side;
    m["loaded"] = state.present;
    m["file"] = file ? nlohmann::json(*file) : nlohmann::json(nullptr);
    m["parameters"] = state.parameters;
    text += fmt::format("{}: ", name);
    if (state.present) {
        m["state"] = state.initstate.empty() ? "builtin" : state.initstate;
        text += fmt::format("loaded ({}", state.initstate.empty() ? "built in" : state.initstate);
        if (state.refcnt) {
            m["refcount"] = *state.refcnt;
            text += fmt::format(", used by {}", *state.refcnt);
        }
        text += ")";
    } else {
        text += "not loaded";
    }
    text += file ? fmt::format("; file {}\n", *file) : fmt::format("; not installed in {}\n", kmod.dirname());
    if (!state.parameters.empty()) {
        text += fmt::format("  parameters: {}\n", parameters_text(state));
    }
    if (std::string(side) == "guest" && state.present) {
        if (const auto uid = vm_uid_text(state)) {
            m["vm_uid"] = *uid;
            text += fmt::format("  vm_uid: {}\n", *uid);
        }
    }
    // What the installed file's build offers: a kernel whose prototypes
    // differ from a probe's leaves that probe's events out (kmod/README.md).
    m["events"] = nullptr;
    m["left_out"] = nlohmann::json::array();
    if (const auto events = file ? kmod.events(name) : std::nullopt) {
        m["events"] = events->offered;
        text += fmt::format("  events: {}\n", events->offered.empty()
                                                  ? std::string("none listed (a build older than this vmtrace)")
                                                  : fmt::format("{}", fmt::join(events->offered, ", ")));
        for (const auto& [event, reason] : events->left_out) {
            m["left_out"].push_back({{"event", event}, {"reason", reason}});
            text += fmt::format("  left out of this build: {} ({})\n", event, reason);
        }
    }
    return m;
}

int status(const po::variables_map& vm) {
    Kmod kmod(dirname_option(vm));
    const bool support = modules::kernel_has_module_support();
    nlohmann::json json;
    json["module_support"] = support;
    json["modules_dir"] = kmod.dirname();
    json["modules"] = nlohmann::json::array();
    std::string text = fmt::format("kernel module support: {}\n",
                                   support ? "yes" : "no (/proc/modules is missing; nothing can be loaded)");
    for (const ModuleSpec& spec : modules::our_modules()) {
        json["modules"].push_back(module_status(kmod, spec.name, spec.side == Side::host ? "host" : "guest", text));
    }
    json["modules"].push_back(module_status(kmod, modules::kVmsyncModule, "host and guest", text));
    const auto lttng = modules::loaded_modules_with_prefix("lttng_");
    std::vector<std::string> lttng_own;  // lttng-modules' own, not vmtrace's probes
    for (const std::string& name : lttng) {
        if (name.rfind("lttng_probe_vmtrace_", 0) != 0) {
            lttng_own.push_back(name);
        }
    }
    const bool tracer = std::find(lttng_own.begin(), lttng_own.end(), "lttng_tracer") != lttng_own.end();
    json["lttng"] = {{"tracer_loaded", tracer}, {"loaded", lttng_own}};
    text +=
        fmt::format("lttng-modules: {}\n",
                    lttng_own.empty() ? std::string("not loaded (no kernel tracing until lttng-sessiond loads them)")
                                      : fmt::format("{} loaded: {}", lttng_own.size(), fmt::join(lttng_own, ", ")));
    if (vm.count("json") != 0) {
        std::cout << json.dump(2) << "\n";
    } else {
        std::cout << text;
    }
    return 0;
}

}  // namespace

int modules_command(const std::vector<std::string>& args) {
    po::options_description options("options");
    options.add_options()("help,h", "show this help")("host", "the host module (lttng-probe-vmtrace-host)")(
        "guest", "the guest module (lttng-probe-vmtrace-guest)")(
        "dirname", po::value<std::string>(), "modules directory (default /lib/modules/`uname -r`)")("json",
                                                                                                    "status: as JSON");
    po::options_description hidden;
    hidden.add_options()("action", po::value<std::string>(), "")("params", po::value<std::vector<std::string>>(), "");
    po::options_description all;
    all.add(options).add(hidden);
    po::positional_options_description positional;
    positional.add("action", 1).add("params", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help") != 0) {
        print_help(options);
        return 0;
    }
    if (vm.count("action") == 0) {
        throw UsageError("modules needs an action: load, unload or status (see `vmtrace modules --help`)");
    }
    const std::string action = vm["action"].as<std::string>();
    const auto params =
        vm.count("params") != 0 ? vm["params"].as<std::vector<std::string>>() : std::vector<std::string>{};
    if (action != "load" && !params.empty()) {
        throw UsageError(fmt::format("modules {}: unexpected argument `{}`", action, params.front()));
    }
    if (action != "status" && vm.count("json") != 0) {
        throw UsageError(fmt::format("modules {}: --json is for status", action));
    }
    if (action == "load") {
        return load(vm, params);
    }
    if (action == "unload") {
        return unload(vm);
    }
    if (action == "status") {
        chosen_sides(vm, false);  // rejects --host --guest
        return status(vm);
    }
    throw UsageError(fmt::format("modules: unknown action `{}` (load, unload or status)", action));
}

}  // namespace vmtrace::cli
