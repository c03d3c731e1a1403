"""The speech recognizer: features -> acoustic model -> CTC decoding -> text.

Training, validation and inference all run audio through this one object, and
its `state_dict` is everything a checkpoint needs to rebuild it.
"""
from dataclasses import asdict

import torch

from .. import __version__
from ..features import FeatureConfig, LogMelFilterbank, SpecAugmentConfig, spec_augment, speed_perturb
from .normalize import TextConfig
from .decoding import SEQUENCE_DECODERS, DecoderConfig, attention_beam_search, decode_batch
from .lm import CharNgramLM
from .models import build_model, model_options
from .tokenizers import tokenizer_from_state


class SpeechRecognizer:
    def __init__(self, model_name: str, model, tokenizer, feature_config: FeatureConfig,
                 text_config: TextConfig, device: torch.device):
        self.model_name = model_name
        self.model = model.to(device)
        self.tokenizer = tokenizer
        self.feature_config = feature_config
        self.text_config = text_config
        self.featurizer = LogMelFilterbank(feature_config).to(device)
        self.device = device
        # Greedy until training or the checkpoint says otherwise: a fresh model has no LM to fuse.
        self.decoder_config = DecoderConfig(decoder="greedy")
        self.lm = None                          # CharNgramLM for beam search fusion, or None

    @classmethod
    def create(cls, model_name: str, tokenizer, feature_config: FeatureConfig, text_config: TextConfig,
               device: torch.device, **model_opts):
        model = build_model(model_name, feature_config.n_mels, len(tokenizer), **model_opts)
        return cls(model_name, model, tokenizer, feature_config, text_config, device)

    def features(self, waves: torch.Tensor, wave_lengths: torch.Tensor, augment: SpecAugmentConfig = None,
                 augment_rows: torch.Tensor = None, speed: float = 1.0, mel_basis: torch.Tensor = None):
        """Padded waveforms -> (B, T, n_mels) features and frame lengths, on the recognizer's device.

        `speed` != 1 speed-perturbs the batch first (training only). `augment` applies SpecAugment
        to every utterance, or only to those where the (B,) bool `augment_rows` is True.
        `mel_basis`: warped filterbanks for VTLP (training only; augment.vtlp_mel_bases).
        """
        waves, wave_lengths = waves.to(self.device, non_blocking=True), wave_lengths.to(self.device)
        waves, wave_lengths = speed_perturb(waves, wave_lengths, speed)
        feats, lengths = self.featurizer(waves, wave_lengths, mel_basis)
        return self.augment_features(feats, lengths, augment, augment_rows)

    def augment_features(self, feats: torch.Tensor, lengths: torch.Tensor, augment: SpecAugmentConfig = None,
                         augment_rows: torch.Tensor = None):
        """Padded features (from `featurizer` or the feature cache) on the device, SpecAugmented as asked."""
        feats, lengths = feats.to(self.device, non_blocking=True), lengths.to(self.device)
        if augment is not None:
            augmented = spec_augment(feats, lengths, augment)
            feats = augmented if augment_rows is None else torch.where(
                augment_rows.to(feats.device)[:, None, None], augmented, feats)
        return feats, lengths

    def forward(self, waves: torch.Tensor, wave_lengths: torch.Tensor, augment: SpecAugmentConfig = None,
                augment_rows: torch.Tensor = None, return_encoding: bool = False):
        """Padded waveforms -> (B, T', V) log-probabilities and output lengths (and, with
        `return_encoding`, the encoder output that the attention decoders read; None for CTC models)."""
        feats, lengths = self.features(waves, wave_lengths, augment, augment_rows)
        if not return_encoding:
            return self.model(feats, lengths)
        if not self.model.has_decoder:
            return (*self.model(feats, lengths), None)
        return self.model(feats, lengths, return_encoding=True)

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor, decoder: DecoderConfig = None,
               encoding: torch.Tensor = None) -> list:
        """Texts by `decoder` (default: the recognizer's own decoder config). The attention model's
        decoders (attention, joint) also take its encoder output, `encoding` (B, T', d)."""
        decoder = decoder or self.decoder_config
        if decoder.decoder in SEQUENCE_DECODERS:
            if not self.model.has_decoder:
                raise ValueError(f"--decoder {decoder.decoder} needs a model with a decoder, not {self.model_name}")
            if encoding is None:
                raise ValueError(f"--decoder {decoder.decoder} needs the encoder output: "
                                 "forward(..., return_encoding=True)")
            joint = decoder.decoder == "joint"
            ids = attention_beam_search(self.model, encoding, lengths, decoder.beam_width, decoder.length_penalty,
                                        ctc_log_probs=log_probs if joint else None,
                                        ctc_weight=decoder.ctc_weight if joint else 0.0)
        else:
            # The LM's units are the tokenizer's: syllables or jamo, each mask token whole.
            lm = self.lm if self.tokenizer.kind in ("char", "jamo") else None
            ids = decode_batch(log_probs, lengths, decoder, lm=lm, units=getattr(self.tokenizer, "units", None))
        return [self.tokenizer.decode(i) for i in ids]

    @torch.no_grad()
    def transcribe_batch(self, waves: torch.Tensor, wave_lengths: torch.Tensor, decoder: DecoderConfig = None) -> list:
        self.model.eval()
        decoder = decoder or self.decoder_config
        if decoder.decoder in SEQUENCE_DECODERS:
            log_probs, lengths, encoding = self.forward(waves, wave_lengths, return_encoding=True)
            return self.decode(log_probs, lengths, decoder=decoder, encoding=encoding)
        return self.decode(*self.forward(waves, wave_lengths), decoder=decoder)

    def state_dict(self) -> dict:
        return {
            "kit_version": __version__,
            "model_name": self.model_name,
            "model_options": model_options(self.model),
            "feature_config": asdict(self.feature_config),
            "text_config": asdict(self.text_config),
            "tokenizer": self.tokenizer.state_dict(),
            "model": self.model.state_dict(),
            "decoder": asdict(self.decoder_config),
            "lm": self.lm.state_dict() if self.lm is not None else None,
        }

    @classmethod
    def from_state_dict(cls, state: dict, device: torch.device):
        tokenizer = tokenizer_from_state(state["tokenizer"])
        recognizer = cls.create(state["model_name"], tokenizer, FeatureConfig(**state["feature_config"]),
                                TextConfig(**state["text_config"]), device, **state["model_options"])
        recognizer.model.load_state_dict(state["model"])
        recognizer.decoder_config = DecoderConfig(**{"decoder": "greedy", **state.get("decoder", {})})
        if state.get("lm") is not None:
            recognizer.lm = CharNgramLM.from_state_dict(state["lm"])
        recognizer.model.eval()
        return recognizer
