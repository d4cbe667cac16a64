#!/usr/bin/env python3
"""Generates docs/events.md from docs/events.json (the schema is the source
of truth).  With --check, exits 1 when docs/events.md is out of date."""
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def render(schema):
    out = ["# vmtrace events", "",
           "<!-- Generated from docs/events.json by docs/generate_events_md.py; do not edit. -->", "",
           schema["description"], "", "## Emitters", ""]
    for name, text in schema["emitters"].items():
        out.append(f"- **{name}**: {text}")
    out += ["", "## Trace environment", "", schema["trace_env"]["description"] + ".", "",
            "| entry | type | value | read by |", "|---|---|---|---|"]
    for e in schema["trace_env"]["entries"]:
        out.append(f"| `{e['name']}` | {e['type']} | {e.get('value', '')} | {e['read_by']} |")
    out += ["", f"Clock: {schema['trace_env']['clock']}.", "", "## Events", ""]
    for event in schema["events"]:
        out += [f"### `{event['name']}`", "",
                event["description"], "",
                f"- provider (TRACE_SYSTEM): `{event['provider']}`, domain: {event['domain']}",
                f"- recorded on: {', '.join(event['machines'])}",
                f"- emitted by: {', '.join(event['emitters'])}",
                f"- read by: {', '.join(event['consumers'])}", "",
                "| field | type | unit | Trace Compass reads it |", "|---|---|---|---|"]
        for field in event["fields"]:
            ftype = field["type"] + (" (hex)" if field.get("base") == 16 else "")
            tc = "yes" if field.get("trace_compass") else ""
            out.append(f"| `{field['name']}` | {ftype} | {field.get('unit', '')} | {tc} |")
        out.append("")
    return "\n".join(out)


def main():
    with open(HERE / "events.json", encoding="utf-8") as f:
        text = render(json.load(f))
    target = HERE / "events.md"
    if "--check" in sys.argv:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            print("docs/events.md is out of date: run docs/generate_events_md.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
