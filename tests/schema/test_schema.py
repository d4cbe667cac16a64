#!/usr/bin/env python3
"""The event schema is well formed and its documentation is up to date."""
import json
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import SOURCE_DIR  # noqa: E402

TYPES = {"u8", "u16", "u32", "u64", "s32", "s64", "string"}


class SchemaTest(unittest.TestCase):
    def setUp(self):
        with open(SOURCE_DIR / "docs" / "events.json", encoding="utf-8") as f:
            self.schema = json.load(f)

    def test_every_event_is_complete_and_follows_lttng_naming(self):
        names = set()
        for event in self.schema["events"]:
            with self.subTest(event=event.get("name")):
                for key in ("name", "provider", "domain", "machines", "emitters", "consumers", "description",
                            "fields"):
                    self.assertIn(key, event)
                self.assertNotIn(event["name"], names, "event listed twice")
                names.add(event["name"])
                # lttng-modules rejects a provider whose events do not start with "<provider>_"
                self.assertTrue(event["name"].startswith(event["provider"] + "_"), event["name"])
                self.assertTrue(set(event["machines"]) <= {"host", "guest", "tracer"})
                for emitter in event["emitters"]:
                    self.assertIn(emitter, self.schema["emitters"])
                field_names = [f["name"] for f in event["fields"]]
                self.assertEqual(len(field_names), len(set(field_names)))
                for field in event["fields"]:
                    self.assertIn(field["type"], TYPES, field)
                    self.assertRegex(field["name"], r"^[a-z_][a-z0-9_]*$")

    def test_trace_compass_fields_are_present(self):
        # What Trace Compass's VM analysis reads (DESIGN.md).
        wanted = {"kvm_x86_entry": {"vcpu_id"}, "kvm_x86_exit": {"vcpu_id", "exit_reason"},
                  "sched_switch": {"prev_tid", "next_tid"}}
        for name in ("vmsync_gh_guest", "vmsync_hg_guest", "vmsync_gh_host", "vmsync_hg_host"):
            wanted[name] = {"cnt", "vm_uid"}
        events = {e["name"]: {f["name"] for f in e["fields"]} for e in self.schema["events"]}
        for name, fields in wanted.items():
            self.assertIn(name, events)
            self.assertTrue(fields <= events[name], f"{name}: {fields - events[name]} missing")

    def test_documentation_is_generated_from_the_schema(self):
        proc = subprocess.run([sys.executable, str(SOURCE_DIR / "docs" / "generate_events_md.py"), "--check"],
                              capture_output=True, text=True, check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        text = (SOURCE_DIR / "docs" / "events.md").read_text(encoding="utf-8")
        for event in self.schema["events"]:
            self.assertIn(f"### `{event['name']}`", text)

    def test_metadata_parser_reads_types_and_bases(self):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from check_trace_schema import parse_metadata
        events, env = parse_metadata(
            'env {\n\tdomain = "kernel";\n\ttracer_major = 2;\n};\n'
            'event {\n\tname = "e";\n\tfields := struct {\n'
            '\t\tinteger { size = 32; align = 8; signed = 1; base = 10; } _a;\n'
            '\t\tinteger { size = 64; align = 8; signed = 0; base = x; } _b;\n'
            '\t\tinteger { size = 8; align = 8; signed = 1; encoding = UTF8; base = 10; } _c[16];\n'
            '\t\tstring { encoding = UTF8; } _d;\n\t} align(8);\n};\n')
        self.assertEqual(env, {"domain": "kernel", "tracer_major": "2"})
        self.assertEqual(events["e"], [("a", "s32", 10), ("b", "u64", 16), ("c", "string", 10), ("d", "string", 10)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
