"""FSCE as a waveform front end for other SpeechBrain recipes (ASR, SID, ...).

Put it in front of any feature extractor from YAML::

    enhancer: !new:speechbrain_fsce.inference.frontend.EnhancementFrontEnd
        source: path/to/fsce_model_folder   # hyperparams.yaml + enhancer.ckpt
        freeze: True                       # False: fine-tune with the recipe

    modules:
        enhancer: !ref <enhancer>
        ...

and in ``compute_forward``: ``wavs = self.modules.enhancer(wavs, wav_lens)``
before ``self.hparams.compute_features(wavs)``.

Authors
 * speechbrain-fsce developers
"""

import torch

from speechbrain_fsce.inference.pretrained import enhance_waveforms


class EnhancementFrontEnd(torch.nn.Module):
    """Maps waveforms ``[B, samples]`` (+ relative lengths) to enhanced ones.

    Frozen (default): the enhancer's parameters do not require gradients, it
    stays in eval mode even when the recipe calls ``modules.train()``, and it
    runs without building a graph. Not frozen: it trains with the recipe
    (its parameters are part of ``modules``, so the recipe's optimizer and
    checkpointer see them) and BatchNorm follows train/eval mode.

    The output is zero beyond each signal's valid length; the level of each
    signal is measured on its valid samples only.

    Arguments
    ---------
    source : str, optional
        A model folder (``hyperparams.yaml`` + ``enhancer.ckpt``), loaded
        through :class:`~speechbrain_fsce.inference.FSCEEnhancement` (strict
        key check included).
    enhancer : torch.nn.Module, optional
        An ``FSCEEnhancer`` to wrap instead of ``source``.
    freeze : bool
        Keep the enhancer fixed (True) or fine-tune it (False).
    run_opts : dict, optional
        Forwarded to ``FSCEEnhancement.from_hparams`` (e.g. ``{"device": "cpu"}``).

    Example
    -------
    >>> from speechbrain_fsce import FSCE, FSCEEnhancer
    >>> fe = EnhancementFrontEnd(enhancer=FSCEEnhancer(FSCE(channels=8, inner_channels=4,
    ...     tcm_hidden_channels=8, num_tcm_modules=1, dilations=(1, 2))))
    >>> wavs = torch.randn(2, 8000)
    >>> out = fe(wavs, torch.tensor([1.0, 0.5]))
    >>> out.shape, bool(out[1, 4000:].abs().max() == 0), out.requires_grad
    (torch.Size([2, 8000]), True, False)
    >>> _ = fe.train()
    >>> fe.enhancer.training
    False
    """

    def __init__(self, source=None, enhancer=None, freeze=True, run_opts=None):
        super().__init__()
        if (source is None) == (enhancer is None):
            raise ValueError(
                "EnhancementFrontEnd needs exactly one of `source` (a model folder) or `enhancer`"
            )
        if source is not None:
            from speechbrain_fsce.inference.pretrained import FSCEEnhancement

            interface = FSCEEnhancement.from_hparams(
                source=str(source), freeze_params=freeze, run_opts=run_opts or {"device": "cpu"}
            )
            enhancer = interface.mods.enhancer
        self.enhancer = enhancer
        self.freeze = freeze
        if freeze:
            for p in self.enhancer.parameters():
                p.requires_grad_(False)
        else:
            for p in self.enhancer.parameters():
                p.requires_grad_(True)
        self.train(self.training)

    def train(self, mode=True):
        """Sets the mode; a frozen enhancer always stays in eval mode."""
        super().train(mode)
        if self.freeze:
            self.enhancer.eval()
        return self

    def forward(self, wavs, lengths=None):
        """Enhances ``wavs`` ``[B, samples]``; ``lengths`` are relative (``[B]``)."""
        if self.freeze:
            with torch.no_grad():
                return enhance_waveforms(self.enhancer, wavs, lengths)
        return enhance_waveforms(self.enhancer, wavs, lengths)
