"""One home for writing files safely: atomic, with normal permissions.

Every file the package writes (enhanced audio, prepared mixtures, manifests,
reports, exported model folders) goes through :func:`atomic_path` (or its
shortcuts :func:`atomic_write` and :func:`atomic_folder`):

* the content is written under a hidden temporary name in the destination
  folder (``.<name>.<pid>-<host>.<random>.partial``; a name too long for the
  file system, ``NAME_MAX`` bytes, is replaced by its hash there) and renamed
  into place only when complete, so a killed run never leaves a truncated
  file under the final name; on any error (``KeyboardInterrupt`` and a
  signal turned into an exception included) the temporary file is removed;
* what a ``SIGKILL`` leaves (nothing can remove it then) is named after its
  process: :func:`remove_partials` (called by the next run on the folders it
  writes) removes the ``.partial`` files and folders of processes of this
  host that are no longer running, never those of a live one; folder walks
  ignore them meanwhile;
* the result gets the permissions a plain ``open()`` / ``mkdir`` would have
  given it (``0o666`` / ``0o777`` minus the umask) rather than the private
  ``0o600`` / ``0o700`` of temporary files, so colleagues and web servers can
  read outputs where the umask allows it;
* with ``overwrite=False`` an existing destination is never replaced
  (``FileExistsError``), checked at the rename itself (a hard link), not
  just before writing.

Authors
 * speechbrain-fsce developers
"""

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
import zlib

#: Ending of unfinished files; folder walks ignore them.
PARTIAL_SUFFIX = ".partial"

#: Longest file name (bytes) assumed where the file system does not say.
NAME_MAX = 255

#: ``<pid>-<host>`` of the process writing a temporary file (in its name).
_OWNER = re.compile(r"\.(\d+)-([0-9a-f]{8})\.[^.]*$")


def current_umask():
    """The process umask (read without changing it for more than an instant).

    Returns
    -------
    int

    Example
    -------
    >>> 0 <= current_umask() <= 0o777
    True
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode():
    """Permissions of a new file: ``0o666 & ~umask``.

    Example
    -------
    >>> file_mode() == 0o666 & ~current_umask()
    True
    """
    return 0o666 & ~current_umask()


def folder_mode():
    """Permissions of a new folder: ``0o777 & ~umask``.

    Example
    -------
    >>> folder_mode() == 0o777 & ~current_umask()
    True
    """
    return 0o777 & ~current_umask()


def _host_id():
    """Eight hex digits naming this host in temporary names."""
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


def _name_max(folder):
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _temp_name(path):
    """``(folder, prefix)`` of the temporary names of ``path``.

    The prefix is ``.<name>.<pid>-<host>.``; ``tempfile`` adds 8 random
    characters and the suffix. A name too long for that to fit in the file
    system's ``NAME_MAX`` bytes is replaced by a hash of it.

    Example
    -------
    >>> folder, prefix = _temp_name("/x/a.wav")
    >>> folder, prefix == f".a.wav.{os.getpid()}-{_host_id()}."
    ('/x', True)
    >>> len(_temp_name("/x/" + "n" * 252 + ".wav")[1]) < 80
    True
    """
    folder, name = os.path.split(os.path.abspath(str(path)))
    owner = f".{os.getpid()}-{_host_id()}."
    room = _name_max(folder if os.path.isdir(folder) else os.path.dirname(folder) or "/")
    room -= 1 + len(owner) + 8 + len(PARTIAL_SUFFIX) + 8  # dot, owner, random, suffix, margin
    if len(os.fsencode(name)) > room:
        name = "h" + hashlib.sha1(os.fsencode(name)).hexdigest()[:24]
    return folder, "." + name + owner


def _place(tmp, path, overwrite):
    """Renames ``tmp`` to ``path``; without ``overwrite`` never replaces."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails atomically if path exists
    except FileExistsError:
        raise FileExistsError(
            errno.EEXIST,
            "exists already; not replaced (allow overwriting to replace it)",
            str(path),
        ) from None
    except OSError:  # no hard links on this file system
        if os.path.lexists(path):
            raise FileExistsError(
                errno.EEXIST,
                "exists already; not replaced (allow overwriting to replace it)",
                str(path),
            ) from None
        os.replace(tmp, path)
        return
    os.remove(tmp)


@contextlib.contextmanager
def atomic_path(path, overwrite=True):
    """Yields a temporary file name that becomes ``path`` on success.

    The caller writes the temporary file (any way it likes: soundfile,
    ``torch.save``, ``open``); when the ``with`` block ends normally it is
    given :func:`file_mode` permissions and renamed to ``path``. If the block
    raises (anything, ``KeyboardInterrupt`` included), the temporary file is
    removed and the exception propagates. Parent folders are created.

    Arguments
    ---------
    path : str or os.PathLike
        Final destination.
    overwrite : bool
        Replace an existing ``path`` (default). If False, a
        ``FileExistsError`` naming ``path`` is raised instead and nothing is
        changed.

    Yields
    ------
    str
        The temporary path (same folder, hidden, ending in ``.partial``).

    Example
    -------
    >>> out = getfixture("tmp_path") / "sub" / "a.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = open(tmp, "w").write("hello")
    >>> out.read_text(), oct(out.stat().st_mode & 0o777) == oct(file_mode())
    ('hello', True)
    >>> with atomic_path(out, overwrite=False) as tmp:
    ...     _ = open(tmp, "w").write("other")
    Traceback (most recent call last):
    ...
    FileExistsError: [Errno 17] exists already; not replaced ...
    >>> sorted(p.name for p in out.parent.iterdir())
    ['a.txt']
    """
    folder, prefix = _temp_name(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=PARTIAL_SUFFIX)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        _place(tmp, str(path), overwrite)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def atomic_write(path, data, overwrite=True):
    """Writes ``data`` (str or bytes) to ``path`` atomically.

    Arguments
    ---------
    path : str or os.PathLike
        Destination; parent folders are created.
    data : str or bytes
        Content (str is written as UTF-8).
    overwrite : bool
        See :func:`atomic_path`.

    Example
    -------
    >>> out = getfixture("tmp_path") / "x.json"
    >>> atomic_write(out, '{"a": 1}')
    >>> out.read_text()
    '{"a": 1}'
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


@contextlib.contextmanager
def atomic_folder(path):
    """Yields a temporary folder that replaces ``path`` on success.

    The folder is created next to ``path``; when the block ends normally it
    gets :func:`folder_mode` permissions (its files :func:`file_mode`) and is
    renamed to ``path`` (an existing ``path`` is moved aside first and
    removed after the rename; it is put back if the rename fails). On error
    the temporary folder is removed.

    Arguments
    ---------
    path : str or os.PathLike
        Final folder.

    Yields
    ------
    str
        The temporary folder.

    Example
    -------
    >>> out = getfixture("tmp_path") / "model"
    >>> with atomic_folder(out) as tmp:
    ...     _ = open(os.path.join(tmp, "w.txt"), "w").write("1")
    >>> sorted(p.name for p in out.iterdir()), (out.stat().st_mode & 0o777) == folder_mode()
    (['w.txt'], True)
    """
    folder, prefix = _temp_name(path)
    os.makedirs(folder, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=folder, prefix=prefix, suffix=PARTIAL_SUFFIX)
    path = str(path)
    try:
        yield tmp
        os.chmod(tmp, folder_mode())
        for root, dirs, files in os.walk(tmp):
            for d in dirs:
                os.chmod(os.path.join(root, d), folder_mode())
            for name in files:
                os.chmod(os.path.join(root, name), file_mode())
        if os.path.lexists(path):
            backup = tempfile.mkdtemp(dir=folder, prefix=prefix, suffix=".old")
            os.rmdir(backup)
            os.rename(path, backup)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(backup, path)
                raise
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.rename(tmp, path)
    finally:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # someone else's process / not a pid
        return True
    return True


def is_abandoned(name):
    """Whether a ``.partial`` name was left by a process that is gone.

    Names written by :func:`atomic_path` / :func:`atomic_folder` carry
    ``<pid>-<host>``: abandoned when the host is this one and no process
    has that id. A name of another host is never judged abandoned (its
    process may be running there); a name without an owner (an older
    version's) is.

    Arguments
    ---------
    name : str
        File or folder name.

    Returns
    -------
    bool

    Example
    -------
    >>> is_abandoned(f".a.wav.{os.getpid()}-{_host_id()}.x1y2z3w4.partial")
    False
    >>> is_abandoned(".a.wav.1-00000000.x1y2z3w4.partial"), is_abandoned(".a.wav.x1.partial")
    (False, True)
    >>> is_abandoned("a.wav")
    False
    """
    if not name.endswith(PARTIAL_SUFFIX):
        return False
    owner = _OWNER.search(name[: -len(PARTIAL_SUFFIX)])
    if owner is None:
        return True
    return owner.group(2) == _host_id() and not _pid_alive(int(owner.group(1)))


def remove_partials(folder, recursive=False):
    """Removes what killed runs left in a folder: their ``*.partial`` files and folders.

    Only what :func:`is_abandoned` says (a live process's temporary file is
    kept). Symbolic links are not followed.

    Arguments
    ---------
    folder : str
        Folder to clean; a missing folder is fine.
    recursive : bool
        Also clean every sub-folder.

    Returns
    -------
    int
        How many were removed.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / ".a.wav.x1.partial").write_bytes(b"")
    >>> mine = tmp / f".b.wav.{os.getpid()}-{_host_id()}.abcdefgh.partial"
    >>> _ = mine.write_bytes(b"")  # a live process's (this one's): kept
    >>> remove_partials(str(tmp)), remove_partials(str(tmp / "nope")), mine.exists()
    (1, 0, True)
    """
    if not os.path.isdir(folder):
        return 0
    count = 0
    for root, dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            if is_abandoned(name) and not os.path.islink(path):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    count += 1
        keep = []
        for name in dirs:
            path = os.path.join(root, name)
            if is_abandoned(name) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
                count += 1
            else:
                keep.append(name)
        dirs[:] = keep if recursive else []
    return count
