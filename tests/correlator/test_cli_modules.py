#!/usr/bin/env python3
"""`vmtrace modules load|unload|status`: parameter checks against the
modules' own modinfo (read through libkmod from a modules directory made
here with depmod), sysfs state, and one-line refusals of the system."""
import json
import os
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from vmtrace_test import TempDirTestCase  # noqa: E402

VMTRACE = os.environ.get("VMTRACE_BIN", str(Path(__file__).resolve().parents[2] / "build" / "vmtrace"))
MODULE_SUPPORT = Path("/proc/modules").exists()
KERNEL = os.uname().release


def vmtrace(*args, env=None):
    return subprocess.run([VMTRACE, *map(str, args)], capture_output=True, text=True, check=False, timeout=60,
                          env=env)


def one_line(test, proc):
    lines = proc.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, proc.stderr)
    test.assertNotIn("Traceback", proc.stderr)
    test.assertNotIn("terminate called", proc.stderr)
    return lines[0]


def fake_module(path, name, params, extra=()):
    """An ELF object whose .modinfo holds `params` [(name, type or None, description)] and the
    `extra` "key=value" entries, as a .ko has."""
    entries = ["license=GPL", f"name={name.replace('-', '_')}", "depends=", "vermagic=0.0.0 SMP mod_unload ",
               *extra]
    for pname, ptype, desc in params:
        if ptype:
            entries.append(f"parmtype={pname}:{ptype}")
        entries.append(f"parm={pname}:{desc}")
    blob = "".join(e.replace("\\", "\\\\").replace('"', '\\"') + "\\0" for e in entries)
    source = path.with_suffix(".c")
    source.write_text(f'static const char modinfo[] __attribute__((used, section(".modinfo"), aligned(1))) = "{blob}";\n'
                      "int init_module(void) { return 0; }\n", encoding="utf-8")
    subprocess.run(["cc", "-c", "-o", str(path), str(source)], check=True)
    source.unlink()


class ModulesCliTest(TempDirTestCase):
    def modules_dir(self, host_params=None, guest_params=None, guest_extra=(), vmsync_extra=None):
        """/lib/modules/VERSION with fake vmtrace modules and depmod's indexes."""
        root = self.tmp / "root"
        moddir = root / "lib" / "modules" / "0.0.0"
        (moddir / "extra").mkdir(parents=True)
        if host_params is not None:
            fake_module(moddir / "extra" / "lttng-probe-vmtrace-host.ko", "lttng-probe-vmtrace-host", host_params)
        if guest_params is not None:
            fake_module(moddir / "extra" / "lttng-probe-vmtrace-guest.ko", "lttng-probe-vmtrace-guest", guest_params,
                        guest_extra)
        if vmsync_extra is not None:
            fake_module(moddir / "extra" / "lttng-probe-vmtrace-vmsync.ko", "lttng-probe-vmtrace-vmsync", [],
                        vmsync_extra)
        depmod = shutil.which("depmod") or "/usr/sbin/depmod"
        subprocess.run([depmod, "-b", str(root), "0.0.0"], check=True, capture_output=True)
        self.assertTrue((moddir / "modules.dep.bin").exists())
        return moddir

    def test_help(self):
        for args in (["modules", "--help"], ["modules", "load", "--help"], ["--help"]):
            with self.subTest(args=args):
                proc = vmtrace(*args)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertIn("modules", proc.stdout)
        proc = vmtrace("modules", "--help")
        for text in ("load --host|--guest", "unload", "status", "period_ms", "1..60000", "0x10000..0xffffffff",
                     "tdp_mmu_map", "exit status"):
            self.assertIn(text, proc.stdout)

    def test_bad_usage_exits_2_with_one_line(self):
        cases = [(["modules"], "needs an action"),
                 (["modules", "frobnicate"], "unknown action `frobnicate`"),
                 (["modules", "load"], "needs --host or --guest"),
                 (["modules", "load", "--host", "--guest"], "exclude each other"),
                 (["modules", "load", "--guest", "period_ms"], "needs a value"),
                 (["modules", "load", "--guest", "period_ms=0"], "period_ms=0 refused: must be 1..60000"),
                 (["modules", "load", "--guest", "period_ms=60001"], "must be 1..60000"),
                 (["modules", "load", "--host", "hc_nr=0xffff"], "hc_nr=0xffff refused: must be 0x10000..0xffffffff"),
                 (["modules", "load", "--host", "hc_nr=0x100000000"], "refused"),
                 (["modules", "load", "--host", "tdp_mmu_map=maybe"], "not a boolean"),
                 (["modules", "load", "--guest", "hc_nr=1", "hc_nr=0x10000"], "refused"),
                 (["modules", "load", "--guest", "vm_uid=1", "vm_uid=2"], "given twice"),
                 (["modules", "load", "--guest", "vm_uid=0x1g"], "vm_uid=0x1g is not an unsigned 64-bit number"),
                 (["modules", "load", "--guest", "=3"], "not a module parameter"),
                 (["modules", "status", "extra"], "unexpected argument `extra`"),
                 (["modules", "unload", "--json"], "--json is for status"),
                 (["modules", "status", "--verbose"], "unrecognised option")]
        for args, message in cases:
            with self.subTest(args=args):
                proc = vmtrace(*args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(message, one_line(self, proc))

    def test_unknown_parameter_exits_2_naming_it(self):
        # The module is not installed here: checked against the parameters kmod/*.c declares.
        for side, known in (("--host", "hc_nr, tdp_mmu_map"), ("--guest", "hc_nr, period_ms, vm_uid, mm_events")):
            with self.subTest(side=side):
                proc = vmtrace("modules", "load", side, "period_ms=100" if side == "--host" else "frequency=3",
                               "--dirname", self.tmp)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                line = one_line(self, proc)
                self.assertIn("has no parameter `period_ms`" if side == "--host" else "has no parameter `frequency`",
                              line)
                self.assertIn(f"(it takes: {known})", line)

    def test_parameters_come_from_the_modules_own_modinfo(self):
        moddir = self.modules_dir(guest_params=[("hc_nr", None, "vmsync hypercall number"),
                                                ("period_ms", None, "period"),
                                                ("vm_uid", "ullong", "VM identifier"),
                                                ("new_knob", "int", "a parameter newer than this vmtrace")])
        # mm_events is one of ours but this module build lacks it: its modinfo wins.
        proc = vmtrace("modules", "load", "--guest", "--dirname", moddir, "mm_events=N")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("has no parameter `mm_events` (it takes: hc_nr, period_ms, vm_uid, new_knob)", one_line(self, proc))
        # A parameter only the modinfo knows is checked by its type.
        proc = vmtrace("modules", "load", "--guest", "--dirname", moddir, "new_knob=many")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("new_knob=many is not a valid int", one_line(self, proc))
        # Our ranges still apply to the parameters we know.
        proc = vmtrace("modules", "load", "--guest", "--dirname", moddir, "period_ms=0")
        self.assertEqual(proc.returncode, 2, proc.stderr)
        # Valid parameters pass the checks; then the system decides.
        proc = vmtrace("modules", "load", "--guest", "--dirname", moddir, "new_knob=-3", "vm_uid=0x1234",
                       "period_ms=50")
        if not MODULE_SUPPORT:
            self.assertEqual(proc.returncode, 4, proc.stderr)
            self.assertIn("no loadable module support", one_line(self, proc))
        else:
            # A fake module: the kernel refuses it (or root is needed); never exit 0 or 2.
            self.assertEqual(proc.returncode, 4, proc.stderr)
            self.assertIn("lttng-probe-vmtrace-guest", one_line(self, proc))

    def test_status_reports_the_installed_file(self):
        moddir = self.modules_dir(host_params=[("hc_nr", None, "n"), ("tdp_mmu_map", "bool", "b")])
        proc = vmtrace("modules", "status", "--json", "--dirname", moddir)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        status = json.loads(proc.stdout)
        files = {m["name"]: m["file"] for m in status["modules"]}
        self.assertEqual(files, {"lttng-probe-vmtrace-host": str(moddir / "extra" / "lttng-probe-vmtrace-host.ko"),
                                 "lttng-probe-vmtrace-guest": None, "lttng-probe-vmtrace-vmsync": None})
        self.assertEqual(status["modules_dir"], str(moddir))

    def test_status_says_which_events_each_module_offers(self):
        vmsync = ["vmsync_gh_guest", "vmsync_hg_guest", "vmsync_gh_host", "vmsync_hg_host"]
        reason = "unmap_vmas() differs from the prototype the probe reads"
        moddir = self.modules_dir(
            guest_params=[("period_ms", None, "period")],
            guest_extra=["vmtrace_event=guest_mm_map", f"vmtrace_left_out=guest_mm_unmap: {reason}"],
            vmsync_extra=[f"vmtrace_event={e}" for e in vmsync])
        proc = vmtrace("modules", "status", "--dirname", moddir)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.splitlines()
        guest = lines.index(next(l for l in lines if l.startswith("lttng-probe-vmtrace-guest: ")))
        self.assertEqual(lines[guest + 1], "  events: guest_mm_map")
        self.assertEqual(lines[guest + 2], f"  left out of this build: guest_mm_unmap ({reason})")
        sync = lines.index(next(l for l in lines if l.startswith("lttng-probe-vmtrace-vmsync: ")))
        self.assertEqual(lines[sync + 1], "  events: " + ", ".join(vmsync))
        # A module that is not installed: nothing is known about its events.
        host = lines.index(next(l for l in lines if l.startswith("lttng-probe-vmtrace-host: ")))
        self.assertIn("not installed", lines[host])
        self.assertFalse(lines[host + 1].startswith("  events:"), lines[host + 1])
        status = json.loads(vmtrace("modules", "status", "--json", "--dirname", moddir).stdout)
        by_name = {m["name"]: m for m in status["modules"]}
        self.assertEqual(by_name["lttng-probe-vmtrace-guest"]["events"], ["guest_mm_map"])
        self.assertEqual(by_name["lttng-probe-vmtrace-guest"]["left_out"], [{"event": "guest_mm_unmap",
                                                                              "reason": reason}])
        self.assertEqual(by_name["lttng-probe-vmtrace-vmsync"]["events"], vmsync)
        self.assertEqual(by_name["lttng-probe-vmtrace-vmsync"]["side"], "host and guest")
        self.assertIsNone(by_name["lttng-probe-vmtrace-host"]["events"])
        self.assertEqual(by_name["lttng-probe-vmtrace-host"]["left_out"], [])

    def test_status_works_here(self):
        proc = vmtrace("modules", "status")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stderr, "")
        lines = proc.stdout.splitlines()
        self.assertEqual(lines[0], "kernel module support: yes" if MODULE_SUPPORT
                         else "kernel module support: no (/proc/modules is missing; nothing can be loaded)")
        for name in ("lttng-probe-vmtrace-host", "lttng-probe-vmtrace-guest", "lttng-probe-vmtrace-vmsync"):
            kernel_name = name.replace("-", "_")
            loaded = Path("/sys/module", kernel_name).exists()
            line = next(l for l in lines if l.startswith(name + ":"))
            self.assertIn("loaded (" if loaded else "not loaded", line)
        self.assertTrue(any(l.startswith("lttng-modules: ") for l in lines))
        status = json.loads(vmtrace("modules", "status", "--json").stdout)
        self.assertEqual(status["module_support"], MODULE_SUPPORT)
        self.assertEqual(status["modules_dir"], f"/lib/modules/{KERNEL}")
        self.assertEqual(status["lttng"]["tracer_loaded"], Path("/sys/module/lttng_tracer").exists())

    def test_status_reads_parameters_and_vm_uid_from_sysfs(self):
        sysfs = self.tmp / "sys-module"
        guest = sysfs / "lttng_probe_vmtrace_guest"
        (guest / "parameters").mkdir(parents=True)
        (guest / "initstate").write_text("live\n")
        (guest / "refcnt").write_text("2\n")
        for name, value in (("hc_nr", "1447907161"), ("period_ms", "100"), ("vm_uid", "12379813738877118345"),
                            ("mm_events", "Y")):
            (guest / "parameters" / name).write_text(value + "\n")
        for name in ("lttng_tracer", "lttng_ring_buffer_client_discard", "kvm"):
            (sysfs / name).mkdir()
        env = dict(os.environ, VMTRACE_SYS_MODULE_DIR=str(sysfs))
        proc = vmtrace("modules", "status", env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("lttng-probe-vmtrace-guest: loaded (live, used by 2)", proc.stdout)
        self.assertIn("  parameters: hc_nr=1447907161 mm_events=Y period_ms=100 vm_uid=12379813738877118345",
                      proc.stdout)
        self.assertIn("  vm_uid: 0xabcdef0123456789", proc.stdout)
        self.assertIn("lttng-probe-vmtrace-host: not loaded", proc.stdout)
        self.assertIn("lttng-modules: 2 loaded: lttng_ring_buffer_client_discard, lttng_tracer", proc.stdout)
        status = json.loads(vmtrace("modules", "status", "--json", env=env).stdout)
        guest_status = next(m for m in status["modules"] if m["side"] == "guest")
        self.assertEqual(guest_status["vm_uid"], "0xabcdef0123456789")
        self.assertEqual(guest_status["refcount"], 2)
        self.assertEqual(guest_status["parameters"]["period_ms"], "100")
        self.assertTrue(status["lttng"]["tracer_loaded"])

    def test_load_and_unload_here_exit_4_with_one_line(self):
        cases = [["load", "--host"], ["load", "--guest", "period_ms=10"]]
        if not MODULE_SUPPORT:  # with module support, unloading a module that is not loaded is no error
            cases += [["unload"], ["unload", "--guest"]]
        for args in cases:
            with self.subTest(args=args):
                proc = vmtrace("modules", *args)
                self.assertEqual(proc.returncode, 4, proc.stderr)
                line = one_line(self, proc)
                self.assertTrue(line.startswith("vmtrace modules: "), line)
                self.assertIn("lttng-probe-vmtrace-", line)
                if not MODULE_SUPPORT:
                    self.assertIn("this kernel has no loadable module support (/proc/modules is missing)", line)
                else:
                    self.assertRegex(line, "not installed|permission|refused|neither kvm_amd nor kvm_intel")


if __name__ == "__main__":
    unittest.main(verbosity=2)
