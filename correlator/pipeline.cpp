// SPDX-License-Identifier: MIT
#include "pipeline.hpp"

#include "output_dir.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <new>
#include <regex>

namespace vmtrace::cli {
namespace {

// babeltrace2's own log lines would repeat the error causes that the
// command prints; VMTRACE_VERBOSE shows them.
bt_logging_level component_log_level() {
    return std::getenv("VMTRACE_VERBOSE") != nullptr ? BT_LOGGING_LEVEL_WARNING : BT_LOGGING_LEVEL_NONE;
}

void check_alloc(const void* object) {
    if (object == nullptr) {
        throw std::bad_alloc();
    }
}

// A graph whose run failed, kept alive until the process exits.
//
// babeltrace2 2.0.4's sink.ctf.fs crashes (SIGSEGV in its trace table,
// "double free", assertions) when a graph is destroyed after an error
// stopped it mid-way: a damaged event in the middle of a trace, a full
// disk, an unwritable output directory.  Plain `babeltrace2` crashes the
// same way.  So a failed graph is never destroyed: the command reports the
// error and exits with it still alive, the kernel closing its files.  The
// list is reachable until exit, so LeakSanitizer does not count it.
std::vector<bt_graph*>& abandoned_graphs() {
    static auto* graphs = new std::vector<bt_graph*>;
    return *graphs;
}

// babeltrace2's cause text without its `name=0x...` object addresses.
std::string without_addresses(const std::string& message) {
    static const std::regex address(R"((, )?[a-z-]*addr=0x[0-9a-fA-F]+(, )?)");
    std::string out = std::regex_replace(message, address, "$1");
    while (out.size() >= 2 && out.compare(out.size() - 2, 2, ", ") == 0) {
        out.resize(out.size() - 2);
    }
    if (out.size() >= 2 && out.compare(out.size() - 2, 2, ": ") == 0) {
        out.resize(out.size() - 2);
    }
    return out;
}

std::string where_of(const std::map<std::string, std::string>& where, const std::string& name) {
    const auto found = where.find(name);
    return found != where.end() ? found->second : name;
}

}  // namespace

std::vector<std::string> take_error_causes(const std::map<std::string, std::string>& where) {
    std::vector<std::string> causes;
    const bt_error* error = bt_current_thread_take_error();
    if (error == nullptr) {
        return causes;
    }
    // babeltrace2's own causes (the graph, a message iterator's wrapper)
    // name the component they concern as `comp-name="NAME"` or
    // `iter-upstream-comp-name="NAME"` among a dozen internal details: the
    // first sentence says what failed, the component where.
    static const std::regex named_component(R"re((?:^|[ ,])(?:iter-upstream-)?comp-name="([^"]*)")re");
    for (std::uint64_t i = 0; i < bt_error_get_cause_count(error); ++i) {
        const bt_error_cause* cause = bt_error_borrow_cause_by_index(error, i);
        std::string message = bt_error_cause_get_message(cause);
        const auto actor = bt_error_cause_get_actor_type(cause);
        if (actor == BT_ERROR_CAUSE_ACTOR_TYPE_COMPONENT || actor == BT_ERROR_CAUSE_ACTOR_TYPE_MESSAGE_ITERATOR) {
            const char* name = actor == BT_ERROR_CAUSE_ACTOR_TYPE_COMPONENT
                                   ? bt_error_cause_component_actor_get_component_name(cause)
                                   : bt_error_cause_message_iterator_actor_get_component_name(cause);
            message = fmt::format("{}: {}", where_of(where, name), without_addresses(message));
        } else if (std::smatch match; std::regex_search(message, match, named_component)) {
            const auto colon = message.find(": ");
            message = fmt::format("{}: {}", where_of(where, match[1].str()),
                                  colon == std::string::npos ? message : message.substr(0, colon));
        } else {
            message = without_addresses(message);
        }
        causes.push_back(message);
    }
    bt_error_release(error);
    return causes;
}

Pipeline::Pipeline(const std::string& plugin_dir)
    : plugin_dir_(plugin_dir), graph_(bt2::GraphRef::adopt(bt_graph_create(0))) {
    check_alloc(graph_.get());
}

const bt_plugin* Pipeline::plugin(const std::string& name) {
    auto found = plugins_.find(name);
    if (found != plugins_.end()) {
        return found->second.get();
    }
    const bt_plugin* plugin = nullptr;
    if (name == "vmtrace" && !plugin_dir_.empty()) {
        const bt_plugin_set* set = nullptr;
        if (bt_plugin_find_all_from_dir(plugin_dir_.c_str(), BT_FALSE, BT_TRUE, &set) ==
            BT_PLUGIN_FIND_ALL_FROM_DIR_STATUS_OK) {
            for (std::uint64_t i = 0; i < bt_plugin_set_get_plugin_count(set); ++i) {
                const bt_plugin* candidate = bt_plugin_set_borrow_plugin_by_index_const(set, i);
                if (name == bt_plugin_get_name(candidate)) {
                    plugin = candidate;
                    bt_plugin_get_ref(plugin);
                }
            }
            bt_plugin_set_put_ref(set);
        }
    } else {
        bt_plugin_find(name.c_str(), BT_TRUE, BT_FALSE, BT_TRUE, BT_TRUE, BT_FALSE, &plugin);
    }
    if (plugin == nullptr) {
        throw PluginNotFound(
            fmt::format("cannot find the babeltrace2 plugin `{}`{}", name,
                        plugin_dir_.empty() || name != "vmtrace" ? std::string() : fmt::format(" in {}", plugin_dir_)),
            causes());
    }
    return plugins_.emplace(name, bt2::PluginRef::adopt(plugin)).first->second.get();
}

std::vector<std::string> Pipeline::causes() {
    return take_error_causes(where_);
}

void Pipeline::add(const std::string& cls, const std::string& name, const bt2::ValueRef& params,
                   const std::string& where) {
    where_[name] = where.empty() ? cls : where;
    const auto first_dot = cls.find('.');
    const auto second_dot = cls.find('.', first_dot + 1);
    const std::string type = cls.substr(0, first_dot);
    const std::string plugin_name = cls.substr(first_dot + 1, second_dot - first_dot - 1);
    const std::string class_name = cls.substr(second_dot + 1);
    const bt_plugin* p = plugin(plugin_name);
    const bt_component* component = nullptr;
    int status = -1;
    if (type == "source") {
        const auto* cc = bt_plugin_borrow_source_component_class_by_name_const(p, class_name.c_str());
        const bt_component_source* out = nullptr;
        if (cc != nullptr) {
            status = bt_graph_add_source_component(graph_.get(), cc, name.c_str(), params.get(), component_log_level(),
                                                   &out);
            component = bt_component_source_as_component_const(out);
        }
    } else if (type == "filter") {
        const auto* cc = bt_plugin_borrow_filter_component_class_by_name_const(p, class_name.c_str());
        const bt_component_filter* out = nullptr;
        if (cc != nullptr) {
            status = bt_graph_add_filter_component(graph_.get(), cc, name.c_str(), params.get(), component_log_level(),
                                                   &out);
            component = bt_component_filter_as_component_const(out);
        }
    } else {
        const auto* cc = bt_plugin_borrow_sink_component_class_by_name_const(p, class_name.c_str());
        const bt_component_sink* out = nullptr;
        if (cc != nullptr) {
            status =
                bt_graph_add_sink_component(graph_.get(), cc, name.c_str(), params.get(), component_log_level(), &out);
            component = bt_component_sink_as_component_const(out);
        }
    }
    if (status != 0) {
        std::vector<std::string> why = causes();
        throw Failure(type == "source" ? fmt::format("cannot read {}", where_[name])
                      : type == "sink" ? fmt::format("cannot write {}", where_[name])
                                       : fmt::format("cannot set up {}", where_[name]),
                      std::move(why));
    }
    components_[name] = component;
}

void Pipeline::add(const bt_component_class_filter* cls, const std::string& name, void* init_data) {
    const bt_component_filter* out = nullptr;
    if (bt_graph_add_filter_component_with_initialize_method_data(graph_.get(), cls, name.c_str(), nullptr, init_data,
                                                                  component_log_level(),
                                                                  &out) != BT_GRAPH_ADD_COMPONENT_STATUS_OK) {
        throw Failure(fmt::format("cannot create component {}", name), take_error_causes());
    }
    components_[name] = bt_component_filter_as_component_const(out);
}

void Pipeline::connect_all(const std::string& from, const std::string& to) {
    const bt_component* upstream = components_.at(from);
    const bt_component* downstream = components_.at(to);
    auto output_count = [&] {
        return bt_component_is_source(upstream)
                   ? bt_component_source_get_output_port_count(reinterpret_cast<const bt_component_source*>(upstream))
                   : bt_component_filter_get_output_port_count(reinterpret_cast<const bt_component_filter*>(upstream));
    };
    auto output_port = [&](std::uint64_t i) {
        return bt_component_is_source(upstream) ? bt_component_source_borrow_output_port_by_index_const(
                                                      reinterpret_cast<const bt_component_source*>(upstream), i)
                                                : bt_component_filter_borrow_output_port_by_index_const(
                                                      reinterpret_cast<const bt_component_filter*>(upstream), i);
    };
    auto free_input_port = [&]() -> const bt_port_input* {
        const std::uint64_t count =
            bt_component_is_filter(downstream)
                ? bt_component_filter_get_input_port_count(reinterpret_cast<const bt_component_filter*>(downstream))
                : bt_component_sink_get_input_port_count(reinterpret_cast<const bt_component_sink*>(downstream));
        for (std::uint64_t i = 0; i < count; ++i) {
            const bt_port_input* port = bt_component_is_filter(downstream)
                                            ? bt_component_filter_borrow_input_port_by_index_const(
                                                  reinterpret_cast<const bt_component_filter*>(downstream), i)
                                            : bt_component_sink_borrow_input_port_by_index_const(
                                                  reinterpret_cast<const bt_component_sink*>(downstream), i);
            if (!bt_port_is_connected(bt_port_input_as_port_const(port))) {
                return port;
            }
        }
        return nullptr;
    };
    for (std::uint64_t i = 0; i < output_count(); ++i) {
        const bt_port_input* in = free_input_port();
        if (in == nullptr) {
            throw Failure(fmt::format("{} has no free input port for {}", where_[to], where_[from]), {});
        }
        if (bt_graph_connect_ports(graph_.get(), output_port(i), in, nullptr) != BT_GRAPH_CONNECT_PORTS_STATUS_OK) {
            std::vector<std::string> why = causes();
            throw Failure(fmt::format("cannot connect {} to {}", where_[from], where_[to]), std::move(why));
        }
    }
}

void Pipeline::run() {
    for (;;) {
        switch (bt_graph_run(graph_.get())) {
        case BT_GRAPH_RUN_STATUS_OK:
            return;
        case BT_GRAPH_RUN_STATUS_AGAIN:
            continue;  // a live source had nothing yet
        case BT_GRAPH_RUN_STATUS_MEMORY_ERROR:
            throw std::bad_alloc();
        default: {
            std::vector<std::string> why = causes();
            // Never destroyed: see abandoned_graphs().
            abandoned_graphs().push_back(graph_.release());
            throw Failure("the trace processing graph failed", std::move(why));
        }
        }
    }
}

bool Pipeline::step(bool& again) {
    again = false;
    switch (bt_graph_run_once(graph_.get())) {
    case BT_GRAPH_RUN_ONCE_STATUS_OK:
        return true;
    case BT_GRAPH_RUN_ONCE_STATUS_AGAIN:
        again = true;
        return true;
    case BT_GRAPH_RUN_ONCE_STATUS_END:
        return false;
    case BT_GRAPH_RUN_ONCE_STATUS_MEMORY_ERROR:
        throw std::bad_alloc();
    default: {
        std::vector<std::string> why = causes();
        abandoned_graphs().push_back(graph_.release());  // see abandoned_graphs()
        throw Failure("the trace processing graph failed", std::move(why));
    }
    }
}

Params::Params() : map_(bt2::ValueRef::adopt(bt_value_map_create())) {
    check_alloc(map_.get());
}

Params& Params::set(const char* key, const std::string& value) {
    if (bt_value_map_insert_string_entry(map_.get(), key, value.c_str()) != BT_VALUE_MAP_INSERT_ENTRY_STATUS_OK) {
        throw std::bad_alloc();
    }
    return *this;
}

Params& Params::set(const char* key, std::int64_t value) {
    if (bt_value_map_insert_signed_integer_entry(map_.get(), key, value) != BT_VALUE_MAP_INSERT_ENTRY_STATUS_OK) {
        throw std::bad_alloc();
    }
    return *this;
}

Params& Params::set(const char* key, bool value) {
    if (bt_value_map_insert_bool_entry(map_.get(), key, value ? BT_TRUE : BT_FALSE) !=
        BT_VALUE_MAP_INSERT_ENTRY_STATUS_OK) {
        throw std::bad_alloc();
    }
    return *this;
}

Params& Params::set(const char* key, const std::vector<std::string>& values) {
    bt_value* array = nullptr;
    if (bt_value_map_insert_empty_array_entry(map_.get(), key, &array) != BT_VALUE_MAP_INSERT_ENTRY_STATUS_OK) {
        throw std::bad_alloc();
    }
    for (const std::string& v : values) {
        if (bt_value_array_append_string_element(array, v.c_str()) != BT_VALUE_ARRAY_APPEND_ELEMENT_STATUS_OK) {
            throw std::bad_alloc();
        }
    }
    return *this;
}

Params& Params::set(const char* key, const std::map<std::string, std::pair<std::int64_t, std::int64_t>>& intervals) {
    bt_value* map = nullptr;
    if (bt_value_map_insert_empty_map_entry(map_.get(), key, &map) != BT_VALUE_MAP_INSERT_ENTRY_STATUS_OK) {
        throw std::bad_alloc();
    }
    for (const auto& [name, interval] : intervals) {
        bt_value* array = nullptr;
        if (bt_value_map_insert_empty_array_entry(map, name.c_str(), &array) != BT_VALUE_MAP_INSERT_ENTRY_STATUS_OK ||
            bt_value_array_append_signed_integer_element(array, interval.first) !=
                BT_VALUE_ARRAY_APPEND_ELEMENT_STATUS_OK ||
            bt_value_array_append_signed_integer_element(array, interval.second) !=
                BT_VALUE_ARRAY_APPEND_ELEMENT_STATUS_OK) {
            throw std::bad_alloc();
        }
    }
    return *this;
}

void Pipeline::run_writing(const std::filesystem::path& dir, const std::string& shown) {
    try {
        run();
    } catch (const Failure& e) {
        if (const std::string trouble = write_trouble(dir); !trouble.empty()) {
            throw Failure(fmt::format("cannot write {}: {}", shown, trouble), e.causes(),
                          trouble.starts_with("no space") ? kExitFailure : kExitSystem);
        }
        throw;
    }
}

}  // namespace vmtrace::cli
