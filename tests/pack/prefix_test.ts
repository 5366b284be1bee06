import { assertEquals } from "../support/assert.ts";
import { patchPkgconfig, patchSysconfigData } from "../../src/install/sysconfig.ts";
import { isRewritten, unpatchPkgconfig, unpatchSysconfigData } from "../../src/pack/prefix.ts";

const DATA = "# system configuration generated and used by the sysconfig module\n" +
  "build_time_vars = {'BINDIR': '/install/bin',\n" +
  " 'CC': 'clang -pthread',\n" +
  " 'CONFIG_ARGS': \"'--prefix=/install' '--with-lto'\",\n" +
  " 'DESTDIRS': '/install /install/lib '\n" +
  "             '/install/lib/python3.12',\n" +
  " 'SIZEOF_INT': 4,\n" +
  " 'prefix': '/install'}\n";

Deno.test("undoing the prefix rewrite gives a file the next install rewrites exactly like the original", () => {
  const first = patchSysconfigData(DATA, "/home/ci/pythons/cpython-3.12.1-linux-x86_64-gnu");
  const packed = unpatchSysconfigData(first);
  assertEquals(packed.includes("/home/ci"), false);
  const elsewhere = "/opt/py/cpython-3.12.1-linux-x86_64-gnu";
  assertEquals(patchSysconfigData(packed, elsewhere), patchSysconfigData(DATA, elsewhere));
  assertEquals(unpatchSysconfigData(packed), packed, "idempotent");
});

Deno.test("undoing the prefix rewrite of a .pc file gives back the PBS text", () => {
  const pc = "prefix=/install\nexec_prefix=${prefix}\nlibdir=/install/lib\nName: Python\n";
  assertEquals(unpatchPkgconfig(patchPkgconfig(pc)), pc);
});

Deno.test("isRewritten names the sysconfig data, sysconfig vars and pkg-config files only", () => {
  assertEquals(isRewritten("lib/python3.12/_sysconfigdata__linux_x86_64-linux-gnu.py"), true);
  assertEquals(isRewritten("lib/python3.14t/_sysconfig_vars__linux_x86_64-linux-gnu.json"), true);
  assertEquals(isRewritten("lib/pkgconfig/python-3.12.pc"), true);
  assertEquals(isRewritten("lib/python3.12/json/_sysconfigdata_x.py"), false);
  assertEquals(isRewritten("lib/python3.12/site-packages/x.pc"), false);
});
