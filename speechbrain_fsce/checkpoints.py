"""Crash-safe training checkpoints and one training per output folder.

* :class:`SafeCheckpointer` is SpeechBrain's ``Checkpointer`` with atomic
  saves: a checkpoint is written into ``<save_folder>/.saving/CKPT+...``
  and renamed into place only when every file is complete (and synced), so
  a run killed while saving leaves no half-written ``CKPT+`` folder. When
  recovering, a checkpoint that is incomplete or unreadable anyway (an empty
  or damaged file, e.g. written by an older version) is skipped with a
  warning and moved aside to ``.invalid-CKPT+...`` (kept for inspection);
  recovery falls back to the previous good checkpoint. Before a checkpoint
  is loaded, the weights of every module are read as data
  (:func:`speechbrain_fsce.model_folder.read_weights`: size-bounded,
  ``weights_only``) and compared with the module: a pickled checkpoint, or
  one of another architecture (a run folder resumed with another
  ``--fsce``), stops with one line
  (:class:`~speechbrain_fsce.model_folder.ModelFolderError`) instead of a
  traceback.
* :class:`TrainingLock` is a lock file in the output folder: a second
  training started in the same folder stops with a clear error instead of
  writing every epoch twice and deleting the other run's checkpoints. A
  lock left by a run that was killed is detected by its process id and
  replaced.

Authors
 * speechbrain-fsce developers
"""

import atexit
import logging
import os
import pathlib
import shutil
import socket
import zipfile

import yaml
from speechbrain.utils.checkpoints import METAFNAME, PARAMFILE_EXT, Checkpoint, Checkpointer
from speechbrain.utils.distributed import ddp_barrier, if_main_process

logger = logging.getLogger(__name__)

#: Sub-folder of the checkpoint folder where checkpoints are written.
STAGING = ".saving"

#: Prefix given to checkpoint folders found incomplete or unreadable.
INVALID_PREFIX = ".invalid-"

#: Name of the lock file in a training output folder.
LOCK_NAME = ".training.lock"


def checkpoint_problem(folder):
    """What is wrong with a checkpoint folder, or None if it is readable.

    Checks that ``CKPT.yaml`` is a YAML mapping, that no parameter file is
    empty, and that every torch (zip) file is complete (CRCs checked).

    Arguments
    ---------
    folder : str or pathlib.Path
        A ``CKPT+...`` folder.

    Returns
    -------
    str or None

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> ckpt = Checkpointer(tmp / "save").save_checkpoint(meta={"a": 1})
    >>> checkpoint_problem(ckpt.path) is None
    True
    >>> _ = (ckpt.path / "enhancer.ckpt").write_bytes(b"")
    >>> checkpoint_problem(ckpt.path)
    'enhancer.ckpt is empty'
    """
    folder = pathlib.Path(folder)
    try:
        with open(folder / METAFNAME, encoding="utf-8") as f:
            meta = yaml.load(f, Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError) as err:
        return f"{METAFNAME} is unreadable ({type(err).__name__})"
    if not isinstance(meta, dict):
        return f"{METAFNAME} is empty or not a mapping"
    try:
        paths = sorted(folder.iterdir())
    except OSError as err:  # moved aside meanwhile by another process
        return f"cannot be listed ({type(err).__name__})"
    for path in paths:
        if path.suffix != PARAMFILE_EXT:
            continue
        if path.stat().st_size == 0:
            return f"{path.name} is empty"
        if zipfile.is_zipfile(path):
            try:
                with zipfile.ZipFile(path) as archive:
                    bad = archive.testzip()
            except (zipfile.BadZipFile, OSError) as err:
                return f"{path.name} is damaged ({err})"
            if bad is not None:
                return f"{path.name} is damaged (bad entry {bad})"
        else:
            with open(path, "rb") as f:
                if f.read(2) == b"PK":
                    return f"{path.name} is a truncated archive"
    return None


def _sync_folder(folder):
    """fsyncs every file of a folder, then the folder (best effort)."""
    for path in pathlib.Path(folder).iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class SafeCheckpointer(Checkpointer):
    """A ``Checkpointer`` whose saves are atomic and whose recovery skips bad checkpoints.

    Arguments
    ---------
    checkpoints_dir : str or pathlib.Path
        See ``speechbrain.utils.checkpoints.Checkpointer``.
    recoverables : mapping, optional
        See ``Checkpointer``.
    custom_load_hooks : mapping, optional
        See ``Checkpointer``.
    custom_save_hooks : mapping, optional
        See ``Checkpointer``.
    allow_partial_load : bool
        See ``Checkpointer``.

    Example
    -------
    >>> import torch
    >>> tmp = getfixture("tmp_path")
    >>> model = torch.nn.Linear(2, 1)
    >>> ckpter = SafeCheckpointer(tmp / "save", {"model": model})
    >>> good = ckpter.save_checkpoint(meta={"epoch": 1})
    >>> bad = ckpter.save_checkpoint(meta={"epoch": 2})
    >>> _ = (bad.path / "model.ckpt").write_bytes(b"")  # as a kill mid-save left it
    >>> ckpter.recover_if_possible().meta["epoch"]
    1
    >>> sorted(p.name.startswith(".invalid-") for p in (tmp / "save").iterdir() if p.name != ".saving")
    [False, True]
    """

    _staging = False

    @classmethod
    def like(cls, checkpointer):
        """A ``SafeCheckpointer`` with the folder, recoverables and hooks of another.

        Arguments
        ---------
        checkpointer : speechbrain.utils.checkpoints.Checkpointer or None
            E.g. the one a recipe's YAML built (returned as it is when it is
            already safe, or None).

        Returns
        -------
        SafeCheckpointer or None
        """
        if checkpointer is None or isinstance(checkpointer, cls):
            return checkpointer
        safe = cls(
            checkpointer.checkpoints_dir,
            custom_load_hooks=checkpointer.custom_load_hooks,
            custom_save_hooks=checkpointer.custom_save_hooks,
            allow_partial_load=checkpointer.allow_partial_load,
        )
        safe.recoverables = checkpointer.recoverables
        safe.optional_recoverables = checkpointer.optional_recoverables
        return safe

    def _staged(self, final):
        if not self._staging:
            return final
        staged = self.checkpoints_dir / STAGING / final.name
        if staged.exists():  # left by a run killed while saving
            shutil.rmtree(staged)
        return staged

    def _new_checkpoint_dirpath(self):
        return self._staged(super()._new_checkpoint_dirpath())

    def _custom_checkpoint_dirpath(self, name):
        return self._staged(super()._custom_checkpoint_dirpath(name))

    def save_checkpoint(self, meta={}, end_of_epoch=True, name=None, verbosity=logging.INFO):
        """Saves a checkpoint atomically (see ``Checkpointer.save_checkpoint``).

        Arguments
        ---------
        meta : mapping
            Added to the meta file.
        end_of_epoch : bool
            Whether the checkpoint is at the end of an epoch.
        name : str, optional
            Custom name (prefixed with ``CKPT+``).
        verbosity : int
            Logging level of the message.

        Returns
        -------
        Checkpoint or None
            The saved checkpoint at its final place (None on non-main
            processes).
        """
        self._staging = True
        try:
            staged = super().save_checkpoint(meta, end_of_epoch, name, verbosity=logging.DEBUG)
        finally:
            self._staging = False
        ddp_barrier()  # every process has written its files
        if staged is None:
            return None
        final = self.checkpoints_dir / staged.path.name
        _sync_folder(staged.path)
        old = None
        if final.exists():  # a custom name saved again: keep the old one until the new is in place
            old = final.with_name(f".replaced-{final.name}")
            if old.exists():
                shutil.rmtree(old)
            os.rename(final, old)
        os.rename(staged.path, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        logger.log(verbosity, "Saved a checkpoint in %s", final)
        paramfiles = {key: final / path.name for key, path in staged.paramfiles.items()}
        return Checkpoint(final, staged.meta, paramfiles)

    def _call_load_hooks(self, checkpoint):
        """Checks every module's weights (one-line errors), then loads as SpeechBrain does."""
        import torch

        from speechbrain_fsce.model_folder import (
            ModelMismatchError,
            module_bound,
            read_weights,
            state_difference,
        )

        for name, obj in self.recoverables.items():
            path = checkpoint.paramfiles.get(name)
            if (
                not isinstance(obj, torch.nn.Module)
                or path is None
                or name in self.custom_load_hooks
            ):
                continue
            state = read_weights(path, module_bound(obj))
            problem = state_difference(obj, state)
            if problem:
                raise ModelMismatchError(
                    f"{path} does not fit the {name} of this run: {problem}; the checkpoints of "
                    f"{self.checkpoints_dir} were trained with another architecture (--fsce): "
                    "give that architecture to resume them, or another --output_folder to start afresh"
                )
        return super()._call_load_hooks(checkpoint)

    def list_checkpoints(self):
        """Lists the readable checkpoints; moves the others aside with a warning.

        Returns
        -------
        list of Checkpoint
        """
        good = []
        for folder in self._list_checkpoint_dirs():
            problem = checkpoint_problem(folder)
            if problem is None:
                good.extend(self._construct_checkpoint_objects([folder]))
                continue
            aside = folder.with_name(INVALID_PREFIX + folder.name)
            if if_main_process() and folder.exists():
                os.rename(folder, aside)
            logger.warning(
                "Skipping checkpoint %s: %s (an interrupted save?); moved aside to %s; "
                "the previous good checkpoint is used",
                folder,
                problem,
                aside.name,
            )
        return good


class TrainingLockError(RuntimeError):
    """Another training is running in the same output folder.

    Arguments
    ---------
    message : str
        One line naming the folder, the other process and what to do.

    Example
    -------
    >>> isinstance(TrainingLockError("x"), RuntimeError)
    True
    """


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class TrainingLock:
    """A lock file that keeps a second training out of an output folder.

    Arguments
    ---------
    folder : str or pathlib.Path
        The training's output folder (created if needed).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> lock = TrainingLock(tmp).acquire()
    >>> (tmp / LOCK_NAME).read_text().split() == [str(os.getpid()), socket.gethostname()]
    True
    >>> lock.release()
    >>> _ = (tmp / LOCK_NAME).write_text(f"1 {socket.gethostname()}")  # a live process
    >>> TrainingLock(tmp).acquire()
    Traceback (most recent call last):
    ...
    speechbrain_fsce.checkpoints.TrainingLockError: ... is in use by another training (pid 1 ...
    """

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.path = self.folder / LOCK_NAME
        self.owner = f"{os.getpid()} {socket.gethostname()}"
        self.held = False

    def _read_owner(self):
        try:
            pid, host = self.path.read_text(encoding="utf-8").split()[:2]
            return int(pid), host
        except (OSError, ValueError):
            return None, None

    def acquire(self):
        """Takes the lock, replacing a stale one; raises if it is held.

        Returns
        -------
        TrainingLock
            ``self``.

        Raises
        ------
        TrainingLockError
            When a live process (on this host, or any process on another
            host) holds the lock.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                stale_text = self._read_text()
                pid, host = self._read_owner()
                if pid is None:  # being written right now, or garbage
                    stale = self.path.stat().st_size > 0 if self.path.exists() else True
                elif host == socket.gethostname() and pid == os.getpid():
                    return self._take_over()  # this process already holds it
                elif host == socket.gethostname():
                    stale = not _pid_alive(pid)
                else:
                    stale = False
                if not stale:
                    raise TrainingLockError(
                        f"{self.folder} is in use by another training (pid {pid} on {host}; "
                        f"lock file {self.path}): wait for it to finish or choose another "
                        "--output_folder (delete the lock file only if no training runs there)"
                    ) from None
                logger.warning(
                    "Removing a stale training lock %s (pid %s is not running)", self.path, pid
                )
                self._remove_stale(stale_text)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.owner + "\n")
            self.held = True
            atexit.register(self.release)
            return self
        raise TrainingLockError(f"{self.path}: could not take the training lock")

    def _read_text(self):
        try:
            return self.path.read_text(encoding="utf-8")
        except OSError:
            return None

    def _remove_stale(self, stale_text):
        """Removes the stale lock whose content was ``stale_text``, and only that one.

        Another process may have replaced it between our reading and our
        removal: the lock is moved aside atomically, and if what was moved is
        not the stale content it is linked back (a link fails rather than
        replace a newer lock).
        """
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}-{id(self)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            if aside.read_text(encoding="utf-8") != stale_text:
                try:
                    os.link(aside, self.path)  # a live owner's fresh lock: give it back
                except FileExistsError:
                    pass
        finally:
            aside.unlink(missing_ok=True)

    def _take_over(self):
        self.held = True
        return self

    def release(self):
        """Removes the lock file if this process holds it."""
        if not self.held:
            return
        self.held = False
        try:
            if self.path.read_text(encoding="utf-8").strip() == self.owner:
                os.remove(self.path)
        except OSError:
            pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
