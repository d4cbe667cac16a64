#!/usr/bin/env python3
"""Compares the CTF metadata of a recorded trace with docs/events.json.

A trace may hold the events of several emitters (a lab host trace: the
kmod-host module's and lttng-modules' own).  For every event of the trace
that the schema lists for one of the given emitters, checks the payload
fields: vmtrace's own emitters (scenario, kmod-host, kmod-guest,
kmod-memsync, ust-provider; an lttng-ust event `provider:event` is the schema's `event`) must
record exactly the schema's fields, in order, with the schema's types and
display bases; others (lttng-modules) at least the schema's fields with
those types.  An event the schema does not list is an error unless a
non-vmtrace emitter is given.  Also checks the trace environment entries
the schema requires.  Exits 1 and names every difference.

    check_trace_schema.py TRACE_DIR --emitter kmod-host --emitter lttng-modules
        [--schema docs/events.json] [--require EVENT ...]
"""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

INTEGER = re.compile(r"^\s*integer\s*\{([^}]*)\}\s*_?(\w+)(\[\d+\])?;")
STRING = re.compile(r"^\s*string(?:\s*\{[^}]*\})?\s*_?(\w+);")
ENUM = re.compile(r"^\s*enum\s*:\s*integer\s*\{([^}]*)\}\s*\{")
EXACT_EMITTERS = {"scenario", "kmod-host", "kmod-guest", "kmod-memsync", "ust-provider"}
# The schema's trace_env describes a kernel trace; an lttng-ust trace
# (domain "ust") carries these instead (vmtrace reads its hostname).
UST_ENV = {"domain": "ust", "tracer_name": "lttng-ust", "tracer_major": None, "tracer_minor": None,
           "hostname": None, "trace_name": None}


def integer_type(attributes):
    attrs = dict(re.findall(r"(\w+)\s*=\s*([\w.]+)", attributes))
    size = int(attrs.get("size", "0"))
    signed = attrs.get("signed", "0") in ("1", "true")
    base = {"x": 16, "X": 16, "16": 16, "hex": 16}.get(attrs.get("base", "10"), 10)
    encoding = attrs.get("encoding", "none")
    return size, signed, base, encoding


def parse_metadata(text):
    """Returns ({event name: [(field, type, base)]}, {env name: value})."""
    events = {}
    env = {}
    env_block = re.search(r"^env \{(.*?)^\};", text, re.S | re.M)
    if env_block:
        for name, value in re.findall(r"^\s*(\w+)\s*=\s*(.*?);\s*$", env_block.group(1), re.M):
            env[name] = value.strip('"')
    for block in re.finditer(r"^event \{(.*?)^\};", text, re.S | re.M):
        body = block.group(1)
        name = re.search(r'name\s*=\s*"([^"]+)"', body).group(1)
        fields_part = body.split("fields :=", 1)[1] if "fields :=" in body else ""
        fields = []
        depth = 0
        for line in fields_part.splitlines()[1:]:
            if ENUM.match(line):
                depth += 1  # enumeration mappings: not a payload field of ours
                continue
            if depth > 0:
                if re.match(r"^\s*\}\s*_?(\w+);", line):
                    depth -= 1
                    fields.append((re.match(r"^\s*\}\s*_?(\w+);", line).group(1), "enum", 10))
                continue
            m = INTEGER.match(line)
            if m:
                size, signed, base, encoding = integer_type(m.group(1))
                if m.group(3) and encoding != "none":
                    fields.append((m.group(2), "string", 10))  # text array
                else:
                    fields.append((m.group(2), f"{'s' if signed else 'u'}{size}", base))
                continue
            m = STRING.match(line)
            if m:
                fields.append((m.group(1), "string", 10))
        events[name] = fields
    return events, env


def schema_event_name(name, schema):
    """An lttng-ust event is named `provider:event`; the schema names it `event` under that provider."""
    provider, sep, bare = name.partition(":")
    if sep and any(e["name"] == bare and e["provider"] == provider for e in schema["events"]):
        return bare
    return name


def check(trace, schema, emitters, required):
    proc = subprocess.run(["babeltrace2", "--output-format=ctf-metadata", trace],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return [f"{trace}: babeltrace2 cannot read its metadata:\n{proc.stderr}"]
    events, env = parse_metadata(proc.stdout)
    events = {schema_event_name(name, schema): fields for name, fields in events.items()}
    problems = []
    if env.get("domain") == "ust":
        wanted_env = UST_ENV
    else:
        wanted_env = {e["name"]: e.get("value") for e in schema["trace_env"]["entries"]}
    for entry, value in wanted_env.items():
        if entry not in env:
            problems.append(f"{trace}: environment entry `{entry}` missing")
        elif value is not None and env[entry] != value:
            problems.append(f"{trace}: environment `{entry}` is {env[entry]!r}, the schema says {value!r}")
    others_allowed = any(e not in EXACT_EMITTERS for e in emitters)
    listed = {e["name"]: e for e in schema["events"] if set(e["emitters"]) & set(emitters)}
    for name in required:
        if name not in events:
            problems.append(f"{trace}: required event `{name}` not declared")
    for name, fields in events.items():
        if name not in listed:
            if not others_allowed:
                problems.append(f"{trace}: event `{name}` is not in the schema for {', '.join(emitters)}")
            continue
        exact = bool(set(listed[name]["emitters"]) & set(emitters) & EXACT_EMITTERS)
        want = [(f["name"], f["type"], f.get("base", 10)) for f in listed[name]["fields"]]
        got = {f[0]: f for f in fields}
        if exact and [f[0] for f in fields] != [f[0] for f in want]:
            problems.append(f"{trace}: event `{name}` fields {[f[0] for f in fields]}, "
                            f"schema {[f[0] for f in want]}")
        for field, ftype, base in want:
            if field not in got:
                problems.append(f"{trace}: event `{name}` lacks field `{field}`")
            elif got[field][1] != ftype or (exact and got[field][2] != base):
                problems.append(f"{trace}: event `{name}` field `{field}` is {got[field][1]} base {got[field][2]}, "
                                f"schema {ftype} base {base}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace")
    parser.add_argument("--emitter", required=True, action="append", help="may be given several times")
    parser.add_argument("--schema", default=str(Path(__file__).resolve().parents[2] / "docs" / "events.json"))
    parser.add_argument("--require", nargs="*", default=[], help="events that must be declared")
    args = parser.parse_args()
    with open(args.schema, encoding="utf-8") as f:
        schema = json.load(f)
    unknown = [e for e in args.emitter if e not in schema["emitters"]]
    if unknown:
        print(f"unknown emitter {unknown}; the schema knows {sorted(schema['emitters'])}", file=sys.stderr)
        return 2
    problems = check(args.trace, schema, args.emitter, args.require)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
