#!/usr/bin/env python3
"""Generates the C++ event table from docs/events.json, the one schema of
vmtrace: event names, ids, providers, machines, emitters and each field's
name, position, type and display base.  Code names events and fields
through it, so that a change to the schema breaks the build where the
change matters, not a test at run time.

usage: generate_events_hpp.py SCHEMA OUTPUT"""
import json
import keyword
import sys
from pathlib import Path

CPP_KEYWORDS = {"and", "auto", "bool", "break", "case", "char", "class", "const", "default", "delete", "do",
                "double", "else", "enum", "explicit", "export", "extern", "false", "float", "for", "friend",
                "goto", "if", "inline", "int", "long", "namespace", "new", "not", "operator", "or", "private",
                "protected", "public", "register", "return", "short", "signed", "sizeof", "static", "struct",
                "switch", "template", "this", "throw", "true", "try", "typedef", "union", "unsigned", "using",
                "virtual", "void", "volatile", "while"}
TYPES = {"u8", "u16", "u32", "u64", "s32", "s64", "string"}
# Names the generated namespaces use for themselves.
RESERVED = {"event_name", "event_id", "provider", "field_count"}


def identifier(name, what):
    if not name.isidentifier() or keyword.iskeyword(name):
        sys.exit(f"{what} `{name}` is not a C++ identifier")
    if name in RESERVED:
        sys.exit(f"{what} `{name}` clashes with a name the generated header uses")
    return name + "_" if name in CPP_KEYWORDS else name


def render(schema):
    events = schema["events"]
    out = ["// Generated from docs/events.json by babeltrace-plugins/schema/generate_events_hpp.py; do not edit.",
           "#pragma once", "", "#include <cstddef>", "#include <cstdint>", "#include <span>",
           "#include <string_view>", "", "namespace vmtrace::schema {", "",
           "enum class FieldType : std::uint8_t { u8, u16, u32, u64, s32, s64, string };", "",
           "// A field: its name, its position in the event's payload, its type",
           "// and the display base the exact emitters write (10 or 16).",
           "struct Field {", "    std::string_view name;", "    std::uint32_t index;", "    FieldType type;",
           "    std::uint8_t base;", "};", "",
           "struct Event {", "    std::string_view name;", "    std::string_view provider;",
           "    bool on_host;   // recorded on KVM hosts", "    bool on_guest;  // recorded in guests",
           "    bool by_scenario;  // source.vmtrace.scenario emits it",
           "    std::span<const Field> fields;", "};", "",
           "enum class EventId : std::uint8_t {"]
    names = set()
    for e in events:
        name = identifier(e["name"], "event")
        if name in names:
            sys.exit(f"event `{e['name']}` listed twice")
        names.add(name)
        out.append(f"    {name},")
    out += ["};", f"inline constexpr std::size_t kEventCount = {len(events)};", ""]
    for e in events:
        name = identifier(e["name"], "event")
        out += [f"// {e['provider']}:{e['name']}", f"namespace {name} {{",
                f"inline constexpr std::string_view event_name = \"{e['name']}\";",
                f"inline constexpr std::string_view provider = \"{e['provider']}\";",
                f"inline constexpr EventId event_id = EventId::{name};",
                f"inline constexpr std::size_t field_count = {len(e['fields'])};"]
        seen = set()
        for i, f in enumerate(e["fields"]):
            fname = identifier(f["name"], f"field of {e['name']}")
            if f["type"] not in TYPES:
                sys.exit(f"event `{e['name']}` field `{f['name']}`: unknown type {f['type']}")
            if fname in seen:
                sys.exit(f"event `{e['name']}` field `{f['name']}` listed twice")
            seen.add(fname)
            base = f.get("base", 10)
            if base not in (10, 16):
                sys.exit(f"event `{e['name']}` field `{f['name']}`: base {base}")
            out.append(f"inline constexpr Field {fname}{{\"{f['name']}\", {i}, FieldType::{f['type']}, {base}}};")
        fields = ", ".join(identifier(f["name"], "field") for f in e["fields"])
        out += [f"inline constexpr Field fields[] = {{{fields}}};", f"}}  // namespace {name}", ""]
    out.append("inline constexpr Event kEvents[kEventCount] = {")
    for e in events:
        name = identifier(e["name"], "event")
        machines, emitters = e["machines"], e["emitters"]
        out.append(f"    {{{name}::event_name, {name}::provider, {str('host' in machines).lower()}, "
                   f"{str('guest' in machines).lower()}, {str('scenario' in emitters).lower()}, {name}::fields}},")
    out += ["};", "",
            "constexpr const Event& event(EventId id) { return kEvents[static_cast<std::size_t>(id)]; }", "",
            "// The event named `name`, or nullptr.",
            "constexpr const Event* find_event(std::string_view name) {",
            "    for (const Event& e : kEvents) {", "        if (e.name == name) {", "            return &e;",
            "        }", "    }", "    return nullptr;", "}", "",
            "// The schema's name of an event class named `name`.  lttng-ust names an",
            "// event `provider:event` (vmtrace_mem:vmtrace_mem_access) where the kernel",
            "// tracers and the schema say `event`: the prefix goes when it is the",
            "// schema's provider of that event; any other name is returned as it is.",
            "constexpr std::string_view schema_event_name(std::string_view name) {",
            "    const std::size_t colon = name.find(':');", "    if (colon == std::string_view::npos) {",
            "        return name;", "    }", "    const std::string_view bare = name.substr(colon + 1);",
            "    const Event* e = find_event(bare);",
            "    return e != nullptr && e->provider == name.substr(0, colon) ? bare : name;", "}", "",
            "}  // namespace vmtrace::schema", ""]
    return "\n".join(out)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    schema = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    text = render(schema)
    out = Path(sys.argv[2])
    # Unchanged output keeps its time stamp: nothing rebuilds.
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
