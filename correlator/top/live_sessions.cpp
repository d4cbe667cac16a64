// SPDX-License-Identifier: MIT
#include "top/live_sessions.hpp"

#include <babeltrace2/babeltrace.h>
#include <fmt/format.h>

#include <regex>

#include "bt2/shared_object.hpp"
#include "cli_common.hpp"
#include "pipeline.hpp"

namespace vmtrace::cli {
namespace {

// LTTng's relay daemon serves live viewers on this port by default.
constexpr int kDefaultLivePort = 5344;

std::string string_entry(const bt_value* map, const char* key) {
    const bt_value* v = bt_value_map_borrow_entry_value_const(map, key);
    return v != nullptr && bt_value_is_string(v) ? bt_value_string_get(v) : "";
}

std::uint64_t integer_entry(const bt_value* map, const char* key) {
    const bt_value* v = bt_value_map_borrow_entry_value_const(map, key);
    if (v != nullptr && bt_value_is_unsigned_integer(v)) {
        return bt_value_integer_unsigned_get(v);
    }
    if (v != nullptr && bt_value_is_signed_integer(v)) {
        return static_cast<std::uint64_t>(bt_value_integer_signed_get(v));
    }
    return 0;
}

}  // namespace

std::string relayd_url(const std::string& relayd) {
    static const std::regex form(R"(net6?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\])(:([0-9]{1,5}))?/?)");
    std::smatch m;
    if (!std::regex_match(relayd, m, form)) {
        throw UsageError(
            fmt::format("--relayd `{}`: expected net://HOST[:PORT] (the relay daemon's live port, "
                        "default {})",
                        relayd, kDefaultLivePort));
    }
    const int port = m[3].matched ? std::stoi(m[3].str()) : kDefaultLivePort;
    if (port < 1 || port > 65535) {
        throw UsageError(fmt::format("--relayd `{}`: port {} is not in 1..65535", relayd, port));
    }
    return fmt::format("{}://{}:{}", relayd.starts_with("net6") ? "net6" : "net", m[1].str(), port);
}

bool is_live_session_url(const std::string& text) {
    static const std::regex form(R"(net6?://[^/]+/host/[^/]+/[^/]+)");
    return std::regex_match(text, form);
}

std::vector<LiveSession> list_live_sessions(const std::string& relayd) {
    const bt_plugin* found = nullptr;
    if (bt_plugin_find("ctf", BT_TRUE, BT_FALSE, BT_TRUE, BT_TRUE, BT_FALSE, &found) != BT_PLUGIN_FIND_STATUS_OK) {
        throw Pipeline::PluginNotFound("cannot find babeltrace2's `ctf` plugin (src.ctf.lttng-live)", {});
    }
    const bt2::PluginRef plugin = bt2::PluginRef::adopt(found);
    const auto* source = bt_plugin_borrow_source_component_class_by_name_const(plugin.get(), "lttng-live");
    if (source == nullptr) {
        throw Pipeline::PluginNotFound("babeltrace2's `ctf` plugin has no src.ctf.lttng-live", {});
    }
    const Params params = Params().set("url", relayd);
    const auto executor = bt2::QueryExecutorRef::adopt(bt_query_executor_create(
        bt_component_class_source_as_component_class_const(source), "sessions", params.value().get()));
    if (executor.get() == nullptr) {
        throw std::bad_alloc();
    }
    const bt_value* result = nullptr;
    if (bt_query_executor_query(executor.get(), &result) != BT_QUERY_EXECUTOR_QUERY_STATUS_OK) {
        std::vector<std::string> causes = take_error_causes();
        std::string why;
        for (const std::string& c : causes) {
            why += "\n  " + c;
        }
        throw CommandError(fmt::format("cannot list the live sessions of the relay daemon at {} (is lttng-relayd "
                                       "running there, with its live port open?){}",
                                       relayd, why),
                           kExitSystem);
    }
    const bt2::ConstValueRef sessions = bt2::ConstValueRef::adopt(result);
    std::vector<LiveSession> out;
    for (std::uint64_t i = 0; bt_value_is_array(sessions.get()) && i < bt_value_array_get_length(sessions.get()); ++i) {
        const bt_value* s = bt_value_array_borrow_element_by_index_const(sessions.get(), i);
        out.push_back(LiveSession{string_entry(s, "url"), string_entry(s, "target-hostname"),
                                  string_entry(s, "session-name"), integer_entry(s, "stream-count"),
                                  integer_entry(s, "client-count"), integer_entry(s, "timer-us")});
    }
    return out;
}

std::string checked_session_url(const std::string& url, bool wait) {
    static const std::regex form(R"((net6?://[^/]+)/host/([^/]+)/([^/]+))");
    std::smatch m;
    if (!std::regex_match(url, m, form)) {
        throw UsageError(fmt::format("`{}`: expected net://HOST[:PORT]/host/HOSTNAME/SESSION", url));
    }
    const std::string relayd = relayd_url(m[1].str());
    const std::string hostname = m[2].str();
    const std::string session = m[3].str();
    if (!wait) {
        const std::vector<LiveSession> served = list_live_sessions(relayd);
        bool found = false;
        std::string known;
        for (const LiveSession& s : served) {
            found = found || (s.hostname == hostname && s.name == session);
            known += fmt::format("\n  {}/host/{}/{}", relayd, s.hostname, s.name);
        }
        if (!found) {
            throw UsageError(fmt::format("no live session `{}` of host `{}` at {}{}{}", session, hostname, relayd,
                                         served.empty() ? " (it serves none)" : "; it serves:", known));
        }
    }
    return fmt::format("{}/host/{}/{}", relayd, hostname, session);
}

}  // namespace vmtrace::cli
