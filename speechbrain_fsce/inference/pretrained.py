"""Ready-to-use FSCE speech enhancement (SpeechBrain ``Pretrained`` interface).

Authors
 * speechbrain-fsce developers
"""

import logging
import os
import pathlib

import torch
from speechbrain.inference.interfaces import Pretrained
from speechbrain.utils.fetching import FetchConfig

from speechbrain_fsce.dataio.audio import load_audio, save_wav
from speechbrain_fsce.inference.shipped import SHIPPED_MODELS, resolve_model
from speechbrain_fsce.model_folder import (
    CKPT_NAME,
    HPARAMS_NAME,
    MODEL_FILES,
    MODEL_JSON,
    ModelFolderError,
    check_device,
    check_folder,
    check_loaded,
    load_enhancer,
    module_bound,
    read_weights,
)

logger = logging.getLogger(__name__)


def check_finite(noisy, what="input"):
    """Raises ``ValueError`` when a waveform holds NaN or Inf samples.

    Arguments
    ---------
    noisy : torch.Tensor
        Any waveform tensor.
    what : str
        Name used in the message (e.g. a file name).

    Example
    -------
    >>> check_finite(torch.zeros(3))
    >>> check_finite(torch.tensor([0.0, float("nan")]), "x.wav")
    Traceback (most recent call last):
    ...
    ValueError: x.wav: contains NaN or Inf samples
    """
    if not torch.isfinite(noisy).all():
        raise ValueError(f"{what}: contains NaN or Inf samples")


def check_lengths(lengths, batch):
    """Validates relative lengths: ``[batch]``, finite, in ``(0, 1]``.

    Arguments
    ---------
    lengths : torch.Tensor or None
        Relative lengths.
    batch : int
        Batch size they must match.

    Returns
    -------
    torch.Tensor or None
        ``lengths`` as a float tensor.

    Example
    -------
    >>> check_lengths(torch.tensor([1.0, 0.5]), 2)
    tensor([1.0000, 0.5000])
    >>> check_lengths(torch.tensor([1.0]), 2)
    Traceback (most recent call last):
    ...
    ValueError: lengths must have one value per waveform ([2]), got shape [1]
    >>> check_lengths(torch.tensor([float("nan"), -1.0]), 2)
    Traceback (most recent call last):
    ...
    ValueError: lengths are relative (0 < length <= 1), got [nan, -1.0]
    """
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, dtype=torch.float32)
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(
            f"lengths must have one value per waveform ([{batch}]), got shape {list(lengths.shape)}"
        )
    if not (torch.isfinite(lengths) & (lengths > 0) & (lengths <= 1)).all():
        raise ValueError(f"lengths are relative (0 < length <= 1), got {lengths.tolist()[:8]}")
    return lengths


def enhance_waveforms(enhancer, noisy, lengths=None):
    """Runs an ``FSCEEnhancer`` on ``[B, samples]`` with the interface's guards.

    Empty input (0 samples) comes back empty without running the network;
    input shorter than one STFT frame is processed like any other (the
    centred STFT pads it with zeros) and comes back with its own length;
    samples beyond ``lengths`` are set to zero in the output.

    Arguments
    ---------
    enhancer : torch.nn.Module
        An ``FSCEEnhancer`` (waveform in, waveform out).
    noisy : torch.Tensor
        ``[B, samples]`` or ``[samples]``.
    lengths : torch.Tensor, optional
        ``[B]`` relative lengths.

    Returns
    -------
    torch.Tensor
        Enhanced waveforms, same shape as ``noisy``.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> enh = FSCEEnhancer(FSCE(channels=8, inner_channels=4, tcm_hidden_channels=8)).eval()
    >>> enhance_waveforms(enh, torch.randn(2, 100)).shape
    torch.Size([2, 100])
    >>> enhance_waveforms(enh, torch.zeros(1, 0)).shape
    torch.Size([1, 0])
    """
    if noisy.dim() == 1:
        if lengths is not None and torch.as_tensor(lengths).dim() == 0:
            lengths = torch.as_tensor(lengths).reshape(1)
        return enhance_waveforms(enhancer, noisy.unsqueeze(0), lengths)[0]
    if noisy.dim() != 2:
        raise ValueError(f"expected waveforms [batch, samples], got shape {tuple(noisy.shape)}")
    check_finite(noisy)
    lengths = check_lengths(lengths, noisy.shape[0])
    if noisy.shape[1] == 0:
        return noisy.clone()
    enhanced = enhancer(noisy, lengths)
    if not torch.isfinite(enhanced).all():
        peak = float(noisy.abs().max())
        raise ValueError(
            f"the enhanced signal holds NaN or Inf samples (input peak {peak:.3g}, "
            "full scale is 1.0): scale the input to a normal level"
        )
    if lengths is not None:
        mask = enhancer.front_end.sample_mask(enhanced, lengths.to(enhanced.device))
        enhanced = enhanced * mask
    return enhanced


class FSCEEnhancement(Pretrained):
    """FSCE speech enhancement from a model folder.

    A model folder holds ``model.json`` (the architecture, plain data),
    ``enhancer.ckpt`` (the weights) and ``hyperparams.yaml`` (for plain
    SpeechBrain; see :mod:`speechbrain_fsce.model_folder`). The package
    ships two, loaded by name: ``from_hparams(source="noncausal")`` and
    ``from_hparams(source="causal")`` (see :meth:`from_hparams`).
    :meth:`from_hparams` reads a local folder in place as data: no code of
    the folder runs, no network, no copy, no symbolic links, and the
    weights must fit the architecture exactly.

    Input waveforms are at the model's rate (``sample_rate``, 16 kHz);
    :meth:`enhance_file` reads any rate, channel count and sample format
    libsndfile knows (8-bit, 16/24/32-bit, float WAV, FLAC, ...), mixes to
    mono and resamples.

    Unusual input, and what comes back:

    * empty (0 samples): ``enhance_batch`` returns it unchanged; a file
      raises ``AudioError`` ("empty file");
    * shorter than one STFT frame (< 320 samples): enhanced like any other
      signal (the centred STFT pads it with zeros), same length out;
    * silence: a finite, near-zero output (level normalisation adds an eps);
    * NaN or Inf samples: ``ValueError`` (``AudioError`` naming the file);
    * missing, corrupt or non-audio file: ``AudioError`` naming the file.

    ``AudioError`` is a ``ValueError`` from
    :mod:`speechbrain_fsce.dataio.audio`.

    Arguments
    ---------
    See ``speechbrain.inference.interfaces.Pretrained``.

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> from speechbrain_fsce.inference.export import export_model
    >>> small = dict(channels=8, inner_channels=4, tcm_hidden_channels=8,
    ...              num_tcm_modules=1, dilations=[1, 2])
    >>> folder = export_model(getfixture("tmp_path") / "model", FSCEEnhancer(FSCE(**small)), small)
    >>> model = FSCEEnhancement.from_hparams(source=str(folder))
    >>> model.enhance_batch(torch.randn(2, 16000)).shape
    torch.Size([2, 16000])
    """

    MODULES_NEEDED = ["enhancer"]

    @classmethod
    def from_hparams(cls, source, hparams_file=HPARAMS_NAME, savedir=None, trusted=False, **kwargs):
        """Loads a model folder (in place) as data, and checks its weights strictly.

        By default nothing in the folder runs (see
        :mod:`speechbrain_fsce.model_folder`): the architecture is read from
        ``model.json`` (plain JSON, every key known, every value type- and
        range-checked, the parameter count bounded), the module is built in
        Python, and ``enhancer.ckpt`` is read with
        ``torch.load(weights_only=True)`` after its size and its zip
        members' unpacked size are checked; the weights are loaded strictly
        and compared with the file's. ``hyperparams.yaml`` is not read (it
        is there for plain SpeechBrain).

        The models shipped with the package load by name, from the installed
        package, with no network: ``source="noncausal"`` (best quality for
        files) or ``source="causal"`` (streaming); see
        :mod:`speechbrain_fsce.inference.shipped`. They load with this
        loader like any other folder.

        Arguments
        ---------
        source : str or pathlib.Path
            A local model folder, or the name of a shipped model
            (``"noncausal"``, ``"causal"``; a local model folder of that name
            wins). Anything else (e.g. a HuggingFace id) is only fetched when
            an explicit ``fetch_config`` is passed, so a typo in a local path
            never turns into a download attempt.
        hparams_file : str
            Name of the YAML inside ``source``; only read with ``trusted``.
        savedir : str, optional
            SpeechBrain's collection folder; None (default) reads the files
            where they are and creates nothing.
        trusted : bool
            Load through SpeechBrain's own ``Pretrained.from_hparams``, which
            runs whatever ``hyperparams.yaml`` and the checkpoint hold (the
            weights are still compared with the checkpoint afterwards). Only
            for folders from a source you trust that need more than plain
            data (``model.json`` is not needed then).
        **kwargs : dict
            ``run_opts``, ``overrides`` (a dict of architecture values; with
            ``trusted``, SpeechBrain's YAML overrides), ``freeze_params``,
            ``fetch_config`` (and, with ``trusted``, the other options of
            ``Pretrained.from_hparams``).

        Returns
        -------
        FSCEEnhancement

        Raises
        ------
        FileNotFoundError
            No such folder, or a shipped model that is not installed.
        ValueError
            One line naming the file: a refused ``model.json`` or checkpoint
            (:class:`~speechbrain_fsce.model_folder.ModelFolderError`),
            mismatched weights, an unusable ``device``.
        """
        run_opts = kwargs.get("run_opts") or {}
        device = (
            run_opts.get("device")
            if isinstance(run_opts, dict)
            else getattr(run_opts, "device", None)
        )
        if device is not None:
            check_device(device)
        if isinstance(source, str) and source in SHIPPED_MODELS:
            source = resolve_model(source)  # a local model folder of that name wins
        if not isinstance(source, str) or not source.startswith(("http:", "https:")):
            folder = pathlib.Path(source)
            if folder.is_dir():
                if trusted:
                    missing = [n for n in (hparams_file, CKPT_NAME) if not (folder / n).is_file()]
                    if missing:
                        raise FileNotFoundError(
                            f"{folder}: not an FSCE model folder (missing {', '.join(missing)})"
                        )
                else:
                    check_folder(folder)
                source = str(folder.absolute())
            elif folder.exists():
                check_folder(folder)  # a file: one line saying so
            elif "fetch_config" not in kwargs:
                raise FileNotFoundError(
                    f"{source}: no such model folder (to fetch a remote model, "
                    "pass fetch_config=speechbrain.utils.fetching.FetchConfig())"
                )
        kwargs.setdefault("fetch_config", FetchConfig(allow_network=False))
        if trusted:
            return cls._from_hparams_trusted(source, hparams_file, savedir, **kwargs)
        return cls._from_hparams_safe(source, savedir, **kwargs)

    @classmethod
    def _from_hparams_safe(
        cls,
        source,
        savedir,
        fetch_config,
        overrides=None,
        overrides_must_match=True,
        **ctor_kwargs,
    ):
        """Safe path of :meth:`from_hparams`: ``model.json`` and bounded weights, as data."""
        folder = pathlib.Path(source)
        if not folder.is_dir():  # remote: fetch the two files, then read them like a folder
            from speechbrain.utils.fetching import fetch

            paths = [
                pathlib.Path(fetch(name, source=source, savedir=savedir, fetch_config=fetch_config))
                for name in MODEL_FILES
            ]
            if paths[0].parent != paths[1].parent:
                raise ModelFolderError(f"{source}: {MODEL_JSON} and {CKPT_NAME} were fetched apart")
            folder = paths[0].parent
        if isinstance(overrides, str):  # plain YAML (safe_load: no tags), kept small
            import yaml

            if len(overrides) > 65536:
                raise ModelFolderError("overrides: longer than 65536 characters")
            try:
                overrides = yaml.safe_load(overrides)
            except yaml.YAMLError as err:
                first = str(err).strip().splitlines()[0]
                raise ModelFolderError(f"overrides: not plain YAML ({first})") from None
        if overrides is not None and not isinstance(overrides, dict):
            raise ModelFolderError("overrides: expected a mapping of architecture values")
        enhancer, arch = load_enhancer(folder, overrides=overrides)
        hparams = {
            **arch,
            "front_end": enhancer.front_end,
            "model": enhancer.model,
            "enhancer": enhancer,
            "modules": {"enhancer": enhancer},
            "savedir": savedir,
        }
        return cls(modules=hparams["modules"], hparams=hparams, **ctor_kwargs)

    @classmethod
    def _from_hparams_trusted(cls, source, hparams_file, savedir, **kwargs):
        """SpeechBrain's loader (runs the folder's code), then a strict comparison."""
        # The non-strict loader logs one warning per bad key, each with the
        # whole module printed; _check_loaded raises one clear error instead.
        transfer_logger = logging.getLogger("speechbrain.utils.checkpoints")
        level = transfer_logger.level
        transfer_logger.setLevel(logging.ERROR)
        try:
            obj = super().from_hparams(
                source=source, hparams_file=hparams_file, savedir=savedir, **kwargs
            )
        except RuntimeError as err:  # load_state_dict: a tensor of the wrong size
            raise ValueError(
                f"{source}: {CKPT_NAME} does not fit {hparams_file}: {str(err).splitlines()[0]}"
            ) from None
        finally:
            transfer_logger.setLevel(level)
        obj._check_loaded(source)
        return obj

    def _check_loaded(self, source):
        """Raises unless the module holds exactly the checkpoint's tensors."""
        pretrainer = getattr(self.hparams, "pretrainer", None)
        if pretrainer is None or "enhancer" not in pretrainer.paths:
            raise ValueError(
                f"{source}: the pretrainer of the model folder has no 'enhancer' loadable"
            )
        path = pretrainer.paths["enhancer"]
        enhancer = self.mods.enhancer
        state = read_weights(path, module_bound(enhancer))
        try:
            check_loaded(enhancer, state, what=str(path))
        except ModelFolderError as err:
            raise ModelFolderError(f"{err} (architecture of {source})") from None

    @property
    def sample_rate(self):
        """Sampling rate (Hz) the model works at."""
        return self.mods.enhancer.front_end.sample_rate

    def enhance_batch(self, noisy, lengths=None):
        """Enhances a batch of waveforms at the model's rate.

        Arguments
        ---------
        noisy : torch.Tensor
            ``[B, samples]`` (or ``[samples]``).
        lengths : torch.Tensor, optional
            ``[B]`` relative lengths; the output is zero beyond them.

        Returns
        -------
        torch.Tensor
            Enhanced waveforms, same shape as ``noisy`` (on ``self.device``).

        Raises
        ------
        ValueError
            For NaN/Inf samples, a tensor that is not 1-D or 2-D, lengths
            that are not ``[B]`` values in ``(0, 1]``, or an output that is
            not finite (input level far beyond full scale).
        """
        noisy = torch.as_tensor(noisy, dtype=torch.float32).to(self.device)
        if lengths is not None:
            lengths = torch.as_tensor(lengths, dtype=torch.float32).to(self.device)
        with torch.no_grad():
            return enhance_waveforms(self.mods.enhancer, noisy, lengths)

    def enhance_file(self, path, output_filename=None):
        """Enhances one audio file (whole, in memory).

        Any sampling rate and channel count is accepted: the file is mixed to
        mono and resampled to :attr:`sample_rate`. For very long files use
        :meth:`enhance_long_file` (constant memory).

        Arguments
        ---------
        path : str
            Audio file (anything libsndfile reads).
        output_filename : str, optional
            Where to write the enhanced signal (mono float32 WAV at
            :attr:`sample_rate`, written atomically).

        Returns
        -------
        torch.Tensor
            Enhanced ``[samples]`` waveform at :attr:`sample_rate`.

        Raises
        ------
        speechbrain_fsce.dataio.audio.AudioError
            (a ``ValueError``) naming the file: missing, unreadable, not audio,
            empty, or NaN/Inf samples; ``ValueError`` naming the file when
            the output would not be finite (nothing is written then).
        """
        noisy = load_audio(path, self.sample_rate)
        try:
            enhanced = self.enhance_batch(noisy.unsqueeze(0))[0]
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
        if output_filename is not None:
            if os.path.exists(output_filename) and os.path.samefile(output_filename, path):
                raise ValueError(f"{path}: refusing to overwrite the input file")
            from speechbrain_fsce.inference.chunked import ENHANCED_COMMENT

            save_wav(output_filename, enhanced.cpu(), self.sample_rate, comment=ENHANCED_COMMENT)
        return enhanced

    def enhance_long_file(self, path, output_filename, **kwargs):
        """Enhances a file of any length in constant memory, writing the result.

        Arguments
        ---------
        path : str
            Audio file (any rate and channel count).
        output_filename : str
            Destination WAV (written atomically).
        **kwargs : dict
            Options of :func:`speechbrain_fsce.inference.chunked.enhance_file_chunked`
            (``chunk_seconds``, ``context_seconds``, ``keep_rate``...).

        Returns
        -------
        dict
            What ``enhance_file_chunked`` reports (rates, lengths, scale).
        """
        from speechbrain_fsce.inference.chunked import enhance_file_chunked

        return enhance_file_chunked(
            self.mods.enhancer, path, output_filename, device=self.device, **kwargs
        )

    def forward(self, noisy, lengths=None):
        """Same as :meth:`enhance_batch`."""
        return self.enhance_batch(noisy, lengths)
