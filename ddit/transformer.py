"""The D-DiT transformer: an SD3-style MM-DiT whose text stream is kept to the end (paper §3.1).

Glossary (shapes):
    b - batch            c - latent channels     h, w - latent height, width
    p - patch size       n - image tokens        l - text tokens
    d - inner width      v - vocabulary size

State-dict names follow the released ``SD3JointModelFlexible`` checkpoints (docs/design.md §3.2), so their
``transformer/`` folder loads with ``DualDiffusionTransformer.from_pretrained``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.attention import JointTransformerBlock
from diffusers.models.embeddings import PatchEmbed, TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNormContinuous
from diffusers.utils import BaseOutput

from .masked_diffusion import never_the_mask


@dataclass
class DualDiffusionTransformerOutput(BaseOutput):
    """``sample``: velocity (b, c, h, w), None without an image; ``logits``: (b, l, v), None if not asked."""

    sample: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class TimestepOnlyEmbedding(nn.Module):
    """SD3's ``CombinedTimestepTextProjEmbeddings`` without the pooled-text term (D-DiT drops CLIP)."""

    def __init__(self, embedding_dim: int):
        super().__init__()
        self.time_proj = Timesteps(num_channels=256, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.timestep_embedder = TimestepEmbedding(in_channels=256, time_embed_dim=embedding_dim)

    def forward(self, timestep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.timestep_embedder(self.time_proj(timestep).to(dtype))  # (b, d)


class DualDiffusionTransformer(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """MM-DiT with an image head (velocity) and a text head (vocabulary logits).

    ``PeftAdapterMixin`` (as on SD3's transformer) gives it diffusers' LoRA methods: ``add_adapter`` for
    training, ``set_adapters``, ``disable_lora``; ``ddit.lora`` builds the pipeline's LoRA support on them.

    The timestep is in scheduler units (0 = clean, 1000 = noise), as in SD3. The text task runs with
    timestep 0 and a clean image; with no image at all, ``null_image_embd`` stands in for it.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["JointTransformerBlock"]
    _skip_layerwise_casting_patterns = ["pos_embed", "norm"]

    @register_to_config
    def __init__(
        self,
        sample_size: int = 128,
        patch_size: int = 2,
        in_channels: int = 16,
        num_layers: int = 24,
        attention_head_dim: int = 64,
        num_attention_heads: int = 24,
        joint_attention_dim: int = 4096,
        caption_projection_dim: int = 1536,
        pooled_projection_dim: int = 2048,  # unused: kept so SD3 / released configs load unchanged
        out_channels: int = 16,
        pos_embed_max_size: int = 192,
        vocab_size: int = 32128,
        mask_token_id: int | None = None,  # None: the pipeline passes the tokenizer's mask id
        num_null_image_tokens: int = 8,  # length of the stand-in for a missing image
        dual_attention_layers: tuple[int, ...] | list[int] = (),  # SD3.5 feature, not supported
        qk_norm: str | None = None,  # SD3.5 feature, not supported
    ):
        super().__init__()
        if len(dual_attention_layers) or qk_norm is not None:
            raise ValueError("dual_attention_layers and qk_norm (SD3.5 features) are not supported by D-DiT.")
        self.inner_dim = num_attention_heads * attention_head_dim
        if caption_projection_dim != self.inner_dim:
            raise ValueError(f"caption_projection_dim ({caption_projection_dim}) must equal heads*head_dim ({self.inner_dim}).")
        self.out_channels = out_channels if out_channels is not None else in_channels

        self.pos_embed = PatchEmbed(
            height=sample_size,
            width=sample_size,
            patch_size=patch_size,
            in_channels=in_channels,
            embed_dim=self.inner_dim,
            pos_embed_max_size=pos_embed_max_size,
        )
        self.time_text_embed = TimestepOnlyEmbedding(self.inner_dim)
        self.context_embedder = nn.Linear(joint_attention_dim, caption_projection_dim)
        self.transformer_blocks = nn.ModuleList(
            [
                # context_pre_only=False everywhere: the last block keeps the text stream for the text head
                JointTransformerBlock(self.inner_dim, num_attention_heads, attention_head_dim, context_pre_only=False)
                for _ in range(num_layers)
            ]
        )
        self.image_norm_out = AdaLayerNormContinuous(self.inner_dim, self.inner_dim, elementwise_affine=False, eps=1e-6)
        self.image_proj_out = nn.Linear(self.inner_dim, patch_size * patch_size * self.out_channels)
        self.text_norm_out = nn.LayerNorm(self.inner_dim, elementwise_affine=False, eps=1e-6)
        self.text_proj_out = nn.Linear(self.inner_dim, vocab_size)
        self.null_image_embd = nn.Parameter(torch.randn(1, num_null_image_tokens, self.inner_dim) * 0.02)
        self.gradient_checkpointing = False

    def no_weight_decay(self) -> set[str]:
        """Parameters that are embeddings in all but type: training leaves them out of weight decay."""
        return {"null_image_embd"}

    def initialize_weights(self) -> None:
        """DiT-style init for training from scratch: Xavier linears, zeroed modulation and output layers."""

        def _xavier(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

        self.apply(_xavier)
        proj = self.pos_embed.proj.weight
        nn.init.xavier_uniform_(proj.view(proj.shape[0], -1))
        for emb in (self.time_text_embed.timestep_embedder.linear_1, self.time_text_embed.timestep_embedder.linear_2):
            nn.init.normal_(emb.weight, std=0.02)
        for block in self.transformer_blocks:  # adaLN-Zero: every block starts as the identity
            for norm in (block.norm1.linear, block.norm1_context.linear):
                nn.init.zeros_(norm.weight)
                nn.init.zeros_(norm.bias)
        for layer in (self.image_norm_out.linear, self.image_proj_out, self.text_proj_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _unpatchify(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        p = self.config.patch_size
        b = x.shape[0]
        x = x.reshape(b, height // p, width // p, p, p, self.out_channels)  # (b, h/p, w/p, p, p, c)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(b, self.out_channels, height, width)  # (b, c, h, w)

    def forward(
        self,
        hidden_states: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor,
        timestep: torch.Tensor | float,
        mask_token_id: int | None = None,
        return_logits: bool = True,
        return_dict: bool = True,
    ) -> DualDiffusionTransformerOutput | tuple:
        """Run both streams through every joint block.

        Args:
            hidden_states: image latents (b, c, h, w), or None for "no image" (the null embedding).
            encoder_hidden_states: text-encoder states (b, l, joint_attention_dim).
            timestep: image timestep in scheduler units (0..1000), scalar or (b,).
            mask_token_id: token whose logit is set to -inf (defaults to ``config.mask_token_id``).
            return_logits: compute the text head (skip it in pure T2I sampling).
        """
        b = encoder_hidden_states.shape[0]
        context = self.context_embedder(encoder_hidden_states)  # (b, l, d)
        dtype = context.dtype
        timestep = torch.as_tensor(timestep, device=context.device).reshape(-1).expand(b)
        temb = self.time_text_embed(timestep, dtype)  # (b, d)

        if hidden_states is None:
            height = width = None
            image = self.null_image_embd.to(dtype).expand(b, -1, -1)  # (b, 8, d)
        else:
            height, width = hidden_states.shape[-2:]
            image = self.pos_embed(hidden_states).contiguous()  # (b, n, d)

        for block in self.transformer_blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                context, image = self._gradient_checkpointing_func(block, image, context, temb, None)
            else:
                context, image = block(hidden_states=image, encoder_hidden_states=context, temb=temb)

        sample = None
        if height is not None:
            sample = self._unpatchify(self.image_proj_out(self.image_norm_out(image, temb)), height, width)
        logits = None
        if return_logits:
            logits = self.text_proj_out(self.text_norm_out(context))  # (b, l, v)
            mask_token_id = self.config.mask_token_id if mask_token_id is None else mask_token_id
            if mask_token_id is not None:  # SUBS: the model never predicts the mask token
                logits = never_the_mask(logits, mask_token_id)
        if not return_dict:
            return (sample, logits)
        return DualDiffusionTransformerOutput(sample=sample, logits=logits)

    @classmethod
    def from_sd3(
        cls, sd3_transformer: nn.Module, vocab_size: int, mask_token_id: int | None = None
    ) -> tuple["DualDiffusionTransformer", dict[str, list[str]]]:
        """Build a D-DiT from a diffusers ``SD3Transformer2DModel``, copying every shared weight.

        Returns the model and a report ``{"copied", "created", "dropped"}`` of state-dict keys (also printed).
        SD3's ``norm_out``/``proj_out`` become ``image_norm_out``/``image_proj_out``; its pooled-text
        embedder is dropped; the last block's text stream and the text head are created fresh.
        """
        cfg = {k: v for k, v in sd3_transformer.config.items() if not k.startswith("_")}
        cfg.update(vocab_size=vocab_size, mask_token_id=mask_token_id)
        model = cls(**{k: v for k, v in cfg.items() if k in cls._init_keys()})
        model.initialize_weights()
        rename = {"norm_out.": "image_norm_out.", "proj_out.": "image_proj_out."}
        source = {}
        for key, value in sd3_transformer.state_dict().items():
            for old, new in rename.items():
                if key.startswith(old):
                    key = new + key[len(old):]
            source[key] = value
        target = model.state_dict()
        copied = [k for k in target if k in source and source[k].shape == target[k].shape]
        created = [k for k in target if k not in copied]
        dropped = [k for k in source if k not in target or source[k].shape != target[k].shape]
        model.load_state_dict({**target, **{k: source[k] for k in copied}})
        report = {"copied": copied, "created": created, "dropped": dropped}
        print(f"from_sd3: copied {len(copied)} tensors; created {len(created)}: {', '.join(created)}; "
              f"dropped {len(dropped)}: {', '.join(dropped)}")
        return model, report

    @classmethod
    def _init_keys(cls) -> set[str]:
        import inspect

        return set(inspect.signature(cls.__init__).parameters) - {"self"}
