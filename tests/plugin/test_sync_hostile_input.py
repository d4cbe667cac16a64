#!/usr/bin/env python3
"""filter.vmtrace.sync on parameters and damaged traces that a user's bad
day brings: each case ends in a clean error (exit 1, never a signal) that
names the parameter or the trace, or in a counted anomaly that fails the
sync past its threshold; never in exit 0 with wrong output.

The damaged traces are simulated recordings edited in place: the byte
offsets come from the trace's own metadata (sink.ctf.fs writes
byte-aligned integers), and event timestamps are found by walking each
packet for event headers whose timestamps grow within the packet's
bounds."""
import json
import re
import shutil
import struct
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import TempDirTestCase, babeltrace, machine_stats, simulate, sync_graph, synchronize  # noqa: E402

SHORT = dict(duration_ms=1_500)
YEAR_NS = 365_25 * 864 * 10**9  # 365.25 days


def struct_fields(metadata, name):
    """[(field, bytes)] of a metadata struct of byte-aligned integers."""
    m = re.search(re.escape(name) + r"\s*:=\s*struct\s*\{(.*?)\}\s*align", metadata, re.S)
    assert m, f"no {name} in the metadata"
    fields = []
    for size, field, count in re.findall(r"integer\s*\{[^}]*?size\s*=\s*(\d+);[^}]*\}\s*(\w+)(?:\[(\d+)\])?;",
                                         m.group(1)):
        assert int(size) % 8 == 0, f"{name}.{field} is not byte-sized"
        fields.append((field, int(size) // 8 * int(count or 1)))
    return fields


class DamagedTrace:
    """A copy of a recorded trace directory, to damage."""

    def __init__(self, recorded, where):
        self.dir = Path(where)
        shutil.copytree(recorded, self.dir)
        metadata = (self.dir / "metadata").read_text(encoding="utf-8")
        self.layout, offset = {}, 0
        for part in ("packet.header", "packet.context"):
            for field, size in struct_fields(metadata, part):
                self.layout[field] = (offset, size)
                offset += size
        assert [f for f, _ in struct_fields(metadata, "event.header")] == ["id", "timestamp"]
        self.events_at = offset

    def streams(self):
        return sorted(p for p in self.dir.iterdir() if p.is_file() and p.name != "metadata")

    def packets(self, stream):
        """(offset, field reader) of each packet of `stream`."""
        data = stream.read_bytes()
        start = 0
        while start < len(data):
            assert struct.unpack_from("<I", data, start)[0] == 0xC1FC1FC1, f"{stream}: no packet at {start}"

            def field(name, start=start):
                offset, size = self.layout[name]
                return int.from_bytes(data[start + offset:start + offset + size], "little")

            yield start, field
            start += field("packet_size") // 8

    def timestamps(self, stream):
        """Offsets of the event timestamps of `stream`, in order."""
        data = stream.read_bytes()
        found = []
        for start, field in self.packets(stream):
            last, end = field("timestamp_begin"), field("timestamp_end")
            o, stop = start + self.events_at, start + field("content_size") // 8 - 15
            while o < stop:
                eid, ts = struct.unpack_from("<QQ", data, o)
                if eid < 64 and last <= ts <= min(end, last + 100_000_000):
                    found.append(o + 8)
                    last = ts
                    o += 16
                else:
                    o += 1
        return found

    def rewrite_u64(self, stream, offset, change):
        data = bytearray(stream.read_bytes())
        value = struct.unpack_from("<Q", data, offset)[0]
        struct.pack_into("<Q", data, offset, change(value))
        stream.write_bytes(bytes(data))

    def set_packet_field(self, stream, packet_offset, name, value):
        data = bytearray(stream.read_bytes())
        offset, size = self.layout[name]
        data[packet_offset + offset:packet_offset + offset + size] = value.to_bytes(size, "little")
        stream.write_bytes(bytes(data))


class SyncHostileInputTest(TempDirTestCase):
    def assert_clean_failure(self, proc, *words):
        self.assertEqual(proc.returncode, 1, f"expected a clean error exit:\n{proc.stderr[-3000:]}")
        text = " ".join(proc.stderr.split())  # babeltrace2 wraps the causes
        for word in words:
            self.assertIn(word, text)

    def test_estimator_is_chosen_by_name_and_an_unknown_one_is_refused(self):
        rec = simulate(self.tmp, seed=21, duration_ms=400)
        proc, stats = synchronize([rec.host] + rec.guests, self.tmp, estimator="convex-hull")
        self.assertEqual(machine_stats(stats, "vmtrace-sim-guest0")["method"], "convex-hull")
        self.assertIn("(convex-hull), hull", proc.stderr)
        proc = babeltrace(sync_graph([rec.host] + rec.guests, sink="dummy", estimator="tsc-offst"), check=False)
        self.assert_clean_failure(proc, "parameter `estimator`", "`tsc-offst`", "known: convex-hull")

    def test_any_prefetch_synchronises_clean_input(self):
        # A prefetch that ends before the guests' first handshakes (0 ms
        # reads one batch) still finds them before the first guest event is
        # placed; a value out of range is refused by name.
        rec = simulate(self.tmp, seed=22, **SHORT)
        for prefetch_ms in (0, 1):
            with self.subTest(prefetch_ms=prefetch_ms):
                proc, stats = synchronize([rec.host] + rec.guests, self.tmp / str(prefetch_ms), prefetch_ms=prefetch_ms)
                for guest in ("vmtrace-sim-guest0", "vmtrace-sim-guest1"):
                    m = machine_stats(stats, guest)
                    self.assertEqual((m["mode"], m["quality"]), ("synchronized", "accurate"), proc.stderr[-2000:])
        proc = babeltrace(sync_graph([rec.host] + rec.guests, sink="dummy", prefetch_ms=-1), check=False)
        self.assert_clean_failure(proc, "parameter `prefetch-ms`")

    def test_guest_timestamp_overflowing_the_clock_is_a_clean_error(self):
        # The top byte of one guest event's timestamp set: its time from the
        # origin no longer fits 64 bits.  Read ahead by the prefetch (the
        # default reads the whole short trace) and by the main pass.
        rec = simulate(self.tmp, seed=23, **SHORT)
        guest = DamagedTrace(rec.guest(0), self.tmp / "guest0")
        stream = guest.streams()[0]
        offset = guest.timestamps(stream)[len(guest.timestamps(stream)) // 2]
        guest.rewrite_u64(stream, offset, lambda ts: ts | 0x7F00_0000_0000_0000)
        for prefetch_ms in (2000, 1):
            with self.subTest(prefetch_ms=prefetch_ms):
                proc, _ = synchronize([rec.host, str(guest.dir), rec.guest(1)], self.tmp / str(prefetch_ms),
                                      check=False, prefetch_ms=prefetch_ms)
                self.assert_clean_failure(proc, "overflows 64-bit ns from origin", "vmtrace-sim-guest0", "`in1`")

    def test_guest_clock_jump_fails_the_sync(self):
        # One guest timestamp 1.4 years ahead: the events after it on that
        # CPU would all be placed on its instant.
        rec = simulate(self.tmp, seed=24, **SHORT)
        guest = DamagedTrace(rec.guest(0), self.tmp / "guest0")
        stream = guest.streams()[0]
        stamps = guest.timestamps(stream)
        guest.rewrite_u64(stream, stamps[len(stamps) // 3], lambda ts: ts + 14 * YEAR_NS // 10)
        proc, stats = synchronize([rec.host, str(guest.dir), rec.guest(1)], self.tmp, check=False)
        self.assert_clean_failure(proc, "vmtrace-sim-guest0", "displaced by a clock jump", "a clock jump or a damaged")
        m = machine_stats(stats, "vmtrace-sim-guest0")
        self.assertGreater(m["displaced_events"], len(stamps) // 2)
        self.assertGreater(m["consistency"]["violations"], 0.01 * m["consistency"]["checked"])
        self.assertEqual(machine_stats(stats, "vmtrace-sim-guest1")["displaced_events"], 0)

    def test_input_that_delivers_no_stream_is_an_error_naming_it(self):
        # A guest all of whose data is cut upstream reaches the filter as a
        # port that ends at once.  (A trace directory with metadata but no
        # stream files gives src.ctf.fs no port at all: only the component
        # that created the sources can tell, as vmtrace does.)
        rec = simulate(self.tmp, seed=25, **SHORT)
        stats_path = self.tmp / "stats.json"
        args = ["run", "-c", "in0:src.ctf.fs", "-p", f'inputs=["{rec.host}"]',
                "-c", "in1:src.ctf.fs", "-p", f'inputs=["{rec.guest(0)}"]',
                "-c", "in2:src.ctf.fs", "-p", f'inputs=["{rec.guest(1)}"]',
                "-c", "m2:filter.utils.muxer", "-c", "cut:filter.utils.trimmer", "-p", 'begin="2099-01-01 00:00:00"',
                "-c", "sync:filter.vmtrace.sync", "-p", f'stats="{stats_path}"', "-c", "out:sink.utils.dummy",
                "--connect", "in0:sync", "--connect", "in1:sync", "--connect", "in2:m2", "--connect", "m2:cut",
                "--connect", "cut:sync", "--connect", "sync:out"]
        proc = babeltrace(args, check=False)
        self.assert_clean_failure(proc, "delivered no stream", "fed by `cut`'s port `out`")
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        self.assertEqual(len(stats["inputs_without_stream"]), 1)
        self.assertEqual(sorted(m["name"] for m in stats["machines"]), ["vmtrace-sim-guest0", "vmtrace-sim-host"])

    def test_cpu_id_beyond_any_machine_is_refused(self):
        # The damaged value of the issue: 524289 would size a table per CPU.
        rec = simulate(self.tmp, seed=26, **SHORT)
        host = DamagedTrace(rec.host, self.tmp / "host")
        stream = host.streams()[0]
        first_packet = next(host.packets(stream))[0]
        host.set_packet_field(stream, first_packet, "_cpu_id", 524289)
        proc, _ = synchronize([str(host.dir)] + rec.guests, self.tmp, check=False)
        self.assert_clean_failure(proc, "cpu_id 524289 is not a CPU number", "`in0`")


if __name__ == "__main__":
    unittest.main(verbosity=2)
