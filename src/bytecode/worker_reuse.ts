/**
 * The part of the worker's Python source that checks the bytecode a tree already has
 * (worker actions `reuse` and `verify`, see `worker.ts`). It is pasted into
 * {@link WORKER_SOURCE}, so it may use the names defined there (`_os`, `_ext`, `_imp`,
 * `_CODE`, `_O_READ`, `_S_IFMT`, `_S_IFREG`, `_read_fd`, `_read_source`, `marshal`).
 *
 * A `.pyc` is current when it is a regular file whose header has this interpreter's
 * magic number and known flags, and, for timestamp mode, the source's mtime and size as
 * found on disk (what importlib compares), for hash modes the source's hash (checked for
 * `unchecked-hash` too: nothing an archive ships is trusted), and whose body unmarshals
 * to a code object (importlib does not fall back to the source when that fails).
 *
 * @module
 */

/** Python 3.7+ source: module-level functions the worker's main loop calls. */
export const REUSE_SOURCE = String.raw`
def _pyc_state(cfile, st, source, hashes):
    """None when cfile is missing, True when it is current for this interpreter."""
    try:
        lst = _os.lstat(cfile)
    except OSError:
        return None
    if lst.st_mode & _S_IFMT != _S_IFREG or lst.st_size < 16:
        return False
    fd = _os.open(cfile, _O_READ)
    try:
        data = _read_fd(fd, lst.st_size)
    finally:
        _os.close(fd)
    if data[:4] != _ext.MAGIC_NUMBER:
        return False
    flags = int.from_bytes(data[4:8], "little")
    if flags & ~0b11:
        return False
    if flags & 0b1:
        if not hashes:
            hashes.append(_imp.source_hash(_ext._RAW_MAGIC_NUMBER, source))
        if data[8:16] != hashes[0]:
            return False
    elif (int.from_bytes(data[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
          or int.from_bytes(data[12:16], "little") != st.st_size & 0xFFFFFFFF):
        return False
    try:
        return type(marshal.loads(memoryview(data)[16:])) is _CODE
    except Exception:
        return False

def _check(worker, path, verify, update=False):
    """Keeps the current .pyc of a source (any level), removes stale or foreign ones
    and compiles the missing levels; with verify, writes nothing and fails instead;
    with update (pyprime compile), compiles what is missing or stale and removes
    nothing, as compileall without -f."""
    st, source = _read_source(path)
    hashes = []
    missing = []
    for level in (0, 1, 2):
        cfile = _ext.cache_from_source(path, optimization="" if level == 0 else level)
        state = _pyc_state(cfile, st, source, hashes)
        if state is False and not verify and not update:
            _os.unlink(cfile)
        if not state and level in worker.levels:
            missing.append(level)
    if not verify and not update:
        _remove_foreign(path)
    if not missing:
        return "reused"
    if verify:
        try:
            compile(source, worker.dfile(path), "exec", dont_inherit=True, optimize=missing[0])
        except Exception:
            return "ok"  # cannot compile: no .pyc is expected
        raise OSError("no current .pyc for optimize level %d" % missing[0])
    worker.compile(path, missing, st, source)
    return "ok"

def _remove_foreign(path):
    """Removes .pyc of the same source for other interpreters (another cache tag),
    but never the own .pyc of another source beside it: a.cpython-312.pyc is a.py's,
    though it also reads as a foreign name of a.cpython-312.py."""
    cfile = _ext.cache_from_source(path)
    cut = max(cfile.rfind("/"), cfile.rfind("\\"))
    directory = cfile[:cut]
    parent = path[:max(path.rfind("/"), path.rfind("\\")) + 1]
    stem = path[len(parent):-3] + "."
    own = set(_ext.cache_from_source(path, optimization=o)[cut + 1:] for o in ("", 1, 2))
    tag = cfile[cut + 1 + len(stem):-4]
    try:
        names = _os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(stem) and name.endswith(".pyc")) or name in own:
            continue
        parts = name[len(stem):-4].split(".")
        if not (len(parts) == 1 or (len(parts) == 2 and parts[1][:4] == "opt-")):
            continue
        owner = None
        for level in ("", ".opt-1", ".opt-2"):
            suffix = "." + tag + level + ".pyc"
            if name.endswith(suffix) and len(name) > len(suffix):
                owner = parent + name[:-len(suffix)] + ".py"
        if owner is not None and owner != path:
            try:
                if _os.stat(owner).st_mode & _S_IFMT == _S_IFREG:
                    continue
            except OSError:
                pass
        _os.unlink(directory + "/" + name)
`;
