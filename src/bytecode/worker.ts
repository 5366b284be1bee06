/**
 * The Python source of a bytecode compilation worker, run with `python -c`. It
 * lives in a string constant so `deno compile` embeds it and no temp file is needed.
 *
 * Protocol (one worker = one long-lived interpreter):
 * - argv: `mode levels ddir_from ddir_to stall_on [action]`, where `mode` is `timestamp`,
 *   `checked-hash` or `unchecked-hash`, `levels` a comma list of optimize levels,
 *   `ddir_*` empty or absolute paths, `stall_on` empty or a basename (test hook), and
 *   `action` `compile` (the default), `reuse`, `update` (`pyprime compile`: compile what
 *   is missing or stale, remove nothing) or `verify`:
 *   - `reuse` (installing an archive that ships bytecode): each `.pyc` of the source, at
 *     every level, is kept when current for this interpreter (magic number, flags, the
 *     source's mtime and size or its hash, and a body that unmarshals to a code object)
 *     and removed otherwise, as are the source's `.pyc` of other cache tags; only the
 *     requested levels left without a `.pyc` are compiled. The reply is `reused` when
 *     nothing was compiled.
 *   - `verify` (`pyprime pack`): the same check, writing nothing; a requested level
 *     without a current `.pyc` is an `err`, unless the source does not compile at all.
 * - The worker first writes `pyprime-compile-worker 1\n`.
 * - stdin: one request per line, `<id> <path>\n`, the path as UTF-8 bytes. It is
 *   decoded with the filesystem encoding and `surrogateescape`, like `os.fsdecode`.
 * - stdout: one reply per request, in order: `<id> ok\n`, `<id> reused\n` (actions
 *   `reuse` and `verify`), `<id> err <message>\n` (the source does not compile:
 *   `SyntaxError`, `ValueError`, `UnicodeDecodeError`, …) or `<id> env <message>\n`
 *   (anything else, `OSError` above all: a full disk, a read-only folder; the run
 *   cannot be trusted), where the message has `\`, CR and LF escaped as `\\`, `\r`, `\n`. Replies are
 *   written in batches: when the worker starts the last request it holds (so the
 *   coordinator can send more meanwhile), before it waits for input, and at least
 *   every 50 ms. One wake-up of the coordinator per batch instead of per file.
 * - EOF on stdin ends the worker with status 0.
 *
 * Speed: it imports only built-in modules and what the interpreter loaded at
 * start-up (plus `unicodedata`, which the tokenizer needs for non-ASCII names),
 * and does what `py_compile` does without its per-file overhead: one `open`,
 * `fstat` and read per source, every optimize level compiled from that one read,
 * the level 1 `.pyc` reused from level 0 when the source has no `assert` and no
 * `__debug__` (all `-O` changes), header and marshal by the import system's own
 * helpers (`_code_to_timestamp_pyc`/`_code_to_hash_pyc`), atomic write by temp file +
 * rename, `__pycache__` created once per folder (and refused when it is not a
 * real folder, so a symlink cannot redirect writes).
 *
 * Reproducibility: CPython's marshal output for a file can depend on what the
 * same process compiled before, so a file's bytes would depend on which worker
 * got it and in which order. Three causes were found, measured on the 3.12
 * stdlib with every pyenv CPython 3.8-3.13 (compile order forward, reversed,
 * twice, and each file in a fresh process), and are neutralised:
 * - one-character latin-1 strings and `""` are cached singletons: once any file
 *   interns one (e.g. `ä` as a name), later files marshal it as interned
 *   (type `Z`/`t` instead of `z`/`u`). The worker interns all 257 up front.
 * - the compiler creates some state lazily (static identifiers such as
 *   `normalize`, the `unicodedata` import for non-ASCII names): the first file
 *   needing it changes reference counts, hence `FLAG_REF` bits, for later
 *   files. The worker compiles warm-up snippets first.
 * - with immortal interned strings (3.12), a frozenset constant used by two
 *   functions stays shared when its strings are new to the process and is copied
 *   per function when they were interned before (`ftplib.py` is one such file).
 *   When the first compile of a file shows a shared frozenset, it is compiled
 *   again, which always gives the copied form.
 * - 3.14 (measured on Debian's 3.14.10 and 3.15.2 stdlibs, `tests/install/versions_test.ts`):
 *   with borrowed stack references (`LOAD_FAST_BORROW`) the module's code object has
 *   refcount 1 when the worker marshals it and 2 in `py_compile`, so marshal flagged it
 *   `FLAG_REF` only there and every later reference number shifted: all 555 files
 *   differed from `py_compile`. Before 3.15 the worker holds a second reference while
 *   marshalling (3.15's `py_compile` has refcount 1, like the worker). PEP 649's
 *   deferred annotations (`__annotate__` code objects) and PEP 750's t-strings (in the
 *   stdlib and a crafted file) brought no history dependence: output is byte-identical
 *   across job counts and orders.
 * The price: a `.pyc` can differ from a fresh `py_compile` run in those bits
 * (interned flag of one-character strings, frozenset sharing); they unmarshal to
 * equal code objects. Per version (stdlib vs a fresh single-file `py_compile`):
 * 3.12.1: 9 of 686 files (8 interning, `ftplib.py` frozenset sharing); 3.14.10: 3 of
 * 555 (`functools`, `inspect`, `weakref`: a nested class's qualname constant such as
 * `cmp_to_key.<locals>.K` marshalled as interned by the worker, not by `py_compile`; the
 * same whatever the job count and order, so not history-dependent; not the frozenset
 * recompile, as 3.14's interned strings are mortal; the exact cause is not pinned down);
 * 3.15.2: 2 of 594 (`functools` the same, `webbrowser.py` frozenset sharing).
 *
 * @module
 */
import { REUSE_SOURCE } from "./worker_reuse.ts";

/** The first line every worker writes; anything else means it is not our worker. */
export const WORKER_HELLO = "pyprime-compile-worker 1";

/**
 * Python 3.7+ source of the worker. Syntax stays 3.7-compatible on purpose.
 *
 * @example
 * ```ts
 * new Deno.Command(python, { args: ["-c", WORKER_SOURCE, "timestamp", "0", "", "", ""] });
 * ```
 */
export const WORKER_SOURCE = String.raw`
import sys, time, _imp, gc, marshal
import _frozen_importlib_external as _ext
try:
    import posix as _os
except ImportError:
    import nt as _os

# -c puts the working directory first on sys.path; only codec modules are
# imported later (for coding cookies) and they must come from the stdlib.
sys.path[:] = [p for p in sys.path if p]
sys.dont_write_bytecode = True
try:
    # Ctrl-C reaches the whole process group: the coordinator decides, and kills us.
    import _signal
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
except (ImportError, AttributeError, ValueError):
    pass

_CODE = type(compile("", "", "exec"))
# Python 3.12 makes interned strings immortal, so they outlive the file that
# interned them; see _shares_frozenset.
_IMMORTAL_INTERNING = sys.getrefcount(sys.intern("pyprime-probe-%d" % id(sys))) > (1 << 29)
# See Worker.compile: before 3.15, py_compile marshals the module's code object with a
# second reference alive (harmless before 3.14, where the worker's frame held one too).
_HOLD_CODE = sys.version_info < (3, 15)

# Snippets that make the compiler create its lazily built state (static
# identifiers, the unicodedata import for non-ASCII names) before the first real
# file, so that file is not compiled in a different state from the others.
_WARM_UP = (
    "from __future__ import annotations\nimport a.b as c\nfrom . import d\nfrom e import *\n",
    "\u00e4\u00df = 1\n",
    "class C(B, metaclass=M):\n    'doc'\n    x: int = 1\n"
    "    def f(self, *a, k: int = 1, **kw) -> C:\n        super().f()\n        return __class__\n",
    "async def g(self):\n    async with x as y:\n        async for z in y:\n            await z\n"
    "    return [i async for i in y]\n",
    "def h():\n    global q\n    def i():\n        yield from x\n        lambda: (yield)\n"
    "    assert x, y\n    return f'{x!r:>{y}}' + b'' + r'\\d' + rb'\\x'\n",
    "try:\n    pass\nexcept E as e:\n    pass\nfinally:\n    pass\nwith a as b, c:\n    del b\n",
    "x = {1: 2, **y}; x = {*y}; x = [*y]; x = (*y,); x[1:2:3] = 1; x @= 2\n"
    "x = {i: j for i, j in y if i}; x = {i for i in y}; x = (i for i in y)\n"
    "if x in {'a', 'b'} and x not in (1, 2.0, 3j, -0.0) and x is not None: pass\n"
    "while ...: break\nfor i in y:\n    continue\nelse:\n    pass\n",
    "def f(a, /, b):\n    if (n := a): pass\n",
)


def _warm_up(levels):
    # Single latin-1 characters and "" are cached singletons: once a file
    # interns one, every later file marshals it as interned. Intern them all now.
    for i in range(256):
        sys.intern(chr(i))
    sys.intern("")
    for snippet in _WARM_UP:
        for level in levels:
            try:
                compile(snippet, "<warm-up>", "exec", dont_inherit=True, optimize=level)
            except Exception:
                pass


def _shares_frozenset(code):
    """True when one frozenset constant is shared by two places in the tree.

    With immortal interning, CPython copies a frozenset constant per code object
    when its strings were interned before (by an earlier file), and keeps it
    shared when they were not: the marshalled bytes depend on history. A second
    compile sees the strings interned, so it always gives the copied form.
    """
    seen = set()
    stack = [code]
    while stack:
        for const in stack.pop().co_consts:
            kind = type(const)
            if kind is _CODE:
                stack.append(const)
            elif kind is frozenset:
                if id(const) in seen:
                    return True
                seen.add(id(const))
    return False


def _same_at_level_1(source):
    return (source.isascii() and b"assert" not in source and b"__debug__" not in source
            and b"coding" not in source)


_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()
_O_READ = _os.O_RDONLY | getattr(_os, "O_CLOEXEC", 0) | getattr(_os, "O_NONBLOCK", 0) | getattr(_os, "O_BINARY", 0)
_O_WRITE = _os.O_WRONLY | _os.O_CREAT | _os.O_EXCL | getattr(_os, "O_CLOEXEC", 0) | getattr(_os, "O_BINARY", 0)
_S_IFMT = 0o170000
_S_IFREG = 0o100000
_S_IFDIR = 0o040000


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[_os.write(fd, view):]


def _read_fd(fd, size):
    """All of fd's bytes, in reads of size + 1 (one read for a file that did not grow)."""
    chunks = []
    while True:
        chunk = _os.read(fd, max(size + 1, 65536))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _read_source(path):
    # O_NONBLOCK: a FIFO put in place of a source must not hang the worker.
    fd = _os.open(path, _O_READ)
    try:
        st = _os.fstat(fd)
        if st.st_mode & _S_IFMT != _S_IFREG:
            raise OSError("not a regular file: %r" % path)
        return st, _read_fd(fd, st.st_size)
    finally:
        _os.close(fd)


class Worker:
    def __init__(self, mode, levels, ddir_from, ddir_to, stall_on):
        self.mode = mode
        self.levels = levels
        self.ddir_from = ddir_from.rstrip("/\\")
        self.ddir_to = ddir_to.rstrip("/\\")
        self.stall_on = stall_on
        self.dirs = set()
        self.pid = _os.getpid()
        self.serial = 0

    def dfile(self, path):
        base = self.ddir_from
        if base and path.startswith(base) and path[len(base):len(base) + 1] in ("/", "\\"):
            return self.ddir_to + path[len(base):]
        return path

    def ensure_dir(self, directory):
        if directory in self.dirs:
            return
        try:
            _os.mkdir(directory, 0o777)
        except FileExistsError:
            # A symlinked __pycache__ could send writes outside the tree.
            if _os.lstat(directory).st_mode & _S_IFMT != _S_IFDIR:
                raise OSError("not a directory: %r" % directory)
        self.dirs.add(directory)

    def write_atomic(self, cfile, data, mode):
        self.serial += 1
        tmp = "%s.%d.%d.tmp" % (cfile, self.pid, self.serial)
        fd = _os.open(tmp, _O_WRITE, mode & 0o666)
        try:
            try:
                _write_all(fd, data)
            finally:
                _os.close(fd)
            _os.replace(tmp, cfile)
        except BaseException:
            try:
                _os.unlink(tmp)
            except OSError:
                pass
            raise

    def compile(self, path, levels=None, st=None, source=None):
        if self.stall_on and path.endswith(self.stall_on) and path[:-len(self.stall_on)][-1:] in ("/", "\\"):
            time.sleep(86400)
        if source is None:
            st, source = _read_source(path)
        dfile = self.dfile(path)
        mode = st.st_mode | 0o200
        source_hash = None
        if self.mode != "timestamp":
            source_hash = _imp.source_hash(_ext._RAW_MAGIC_NUMBER, source)
        first = True
        data = None
        for level in self.levels if levels is None else levels:
            # -O only drops asserts and folds __debug__: without either, the
            # level 1 .pyc is the level 0 one. The check is on bytes, so only for
            # ASCII sources in the default encoding.
            if not (level == 1 and data is not None and _same_at_level_1(source)):
                code = compile(source, dfile, "exec", dont_inherit=True, optimize=level)
                if first and _IMMORTAL_INTERNING and _shares_frozenset(code):
                    code = compile(source, dfile, "exec", dont_inherit=True, optimize=level)
                first = False
                # marshal flags the module's code object FLAG_REF only when its refcount
                # is above 1: with 3.14's borrowed stack references it is 1 here and 2 in
                # py_compile, in 3.15 1 in both; a second reference matches py_compile.
                if _HOLD_CODE:
                    self.held = code
                if source_hash is None:
                    data = _ext._code_to_timestamp_pyc(code, st.st_mtime, st.st_size)
                else:
                    data = _ext._code_to_hash_pyc(code, source_hash, self.mode == "checked-hash")
                self.held = None
                del code
            cfile = _ext.cache_from_source(path, optimization="" if level == 0 else level)
            self.ensure_dir(cfile[:max(cfile.rfind("/"), cfile.rfind("\\"))])
            self.write_atomic(cfile, data, mode)


# What a source can do wrong: bad syntax, a NUL byte (ValueError), an undecodable
# file (UnicodeDecodeError is a ValueError), an unknown coding cookie, nesting too
# deep for the compiler. Only these count as "did not compile".
_SOURCE_ERRORS = (SyntaxError, ValueError, LookupError, RecursionError)

${REUSE_SOURCE}

def _escape(text):
    data = text.encode("utf-8", "backslashreplace")
    return data.replace(b"\\", b"\\\\").replace(b"\r", b"\\r").replace(b"\n", b"\\n")


def main(argv):
    mode, levels, ddir_from, ddir_to, stall_on = argv[:5]
    action = argv[5] if len(argv) > 5 else "compile"
    worker = Worker(mode, [int(x) for x in levels.split(",")], ddir_from, ddir_to, stall_on)
    _warm_up(worker.levels)
    # compile() leaves no reference cycles (the AST lives in a C arena; collecting
    # after compiling every stdlib file of 3.8, 3.10, 3.12 and 3.13, syntax errors
    # included, found 0 unreachable objects), so the cyclic collector only costs
    # time: about 4 % of the 3.12 stdlib's compile time.
    gc.collect()
    gc.disable()
    _write_all(1, b"pyprime-compile-worker 1\n")
    # Replies are held and written together, which saves the coordinator a
    # wake-up per file: before the last request we hold (so it can send more
    # while we compile it), before waiting for input, and at least every 50 ms.
    _os.set_blocking(0, False)
    clock = time.monotonic
    pending = []
    carry = b""
    out = []
    flushed = clock()
    while True:
        if not pending:
            try:
                chunk = _os.read(0, 1 << 16)
            except BlockingIOError:
                if out:
                    _write_all(1, b"".join(out))
                    out = []
                    flushed = clock()
                _os.set_blocking(0, True)
                chunk = _os.read(0, 1 << 16)
                _os.set_blocking(0, False)
            if not chunk:
                if out:
                    _write_all(1, b"".join(out))
                return
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            lines.reverse()
            pending = lines
            continue
        if out and (len(pending) == 1 or clock() - flushed > 0.05):
            _write_all(1, b"".join(out))
            out = []
            flushed = clock()
        ident, _, raw = pending.pop().partition(b" ")
        try:
            path = raw.decode(_FS_ENCODING, _FS_ERRORS)
            if action == "compile":
                worker.compile(path)
                out.append(ident + b" ok\n")
            else:
                status = _check(worker, path, action == "verify", action == "update")
                out.append(ident + b" " + status.encode() + b"\n")
        except _SOURCE_ERRORS as error:
            text = "%s: %s" % (type(error).__name__, error)
            out.append(ident + b" err " + _escape(text) + b"\n")
        except Exception as error:
            # OSError (a full disk, a read-only folder, no permission) and anything
            # unexpected: the environment failed, not the source.
            text = "%s: %s" % (type(error).__name__, error)
            out.append(ident + b" env " + _escape(text) + b"\n")


main(sys.argv[1:])
`;
