"""Architecture configs of the shipped model (``models/sana-shapes``) and the prompt handling shared by training
and sampling. Every class here is the real diffusers / transformers class; only the sizes are small.

* picture 256 x 256 px; AutoencoderDC with 5 stages = spatial factor 16, 16 latent channels -> latent 16 x 16 x 16
* SanaTransformer2DModel: width 256 (8 linear-attention heads of 32), 8 blocks, 8 cross-attention heads of 32,
  patch 1, sin-cos positional embedding (interpolation_scale 1.0, as the 2K/4K SANA models), no qk-norm
* Gemma2Model text encoder: width 256, 4 layers, 4 query heads / 2 kv heads of 64, GeGLU 512, vocab 1024
* DPMSolverMultistepScheduler with SANA's flow settings (flow_shift 3.0)
"""

from __future__ import annotations

RESOLUTION = 256
LATENT_CHANNELS = 16
VAE_FACTOR = 16
LATENT_SIZE = RESOLUTION // VAE_FACTOR

# SanaPipeline pads the (instruction + prompt) to n_chi + max_sequence_length - 2 tokens and keeps the first and the
# last max_sequence_length - 1 positions. Because Gemma attends causally and pads on the right, the kept hidden
# states of real tokens do not depend on this length, and pads are masked out in the DiT's cross-attention, so the
# model trained at 64 gives the same pictures with the pipeline default of 300 (captions are < 30 tokens).
TRAIN_MAX_SEQUENCE_LENGTH = 64


def vae_config() -> dict:
    return dict(
        in_channels=3,
        latent_channels=LATENT_CHANNELS,
        attention_head_dim=32,
        encoder_block_types=["ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock", "EfficientViTBlock"],
        decoder_block_types=["ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock", "EfficientViTBlock"],
        encoder_block_out_channels=[32, 64, 128, 128, 256],
        decoder_block_out_channels=[32, 64, 128, 128, 256],
        encoder_layers_per_block=[1, 1, 1, 1, 1],
        decoder_layers_per_block=[1, 1, 2, 2, 2],
        encoder_qkv_multiscales=[[], [], [], [5], [5]],
        decoder_qkv_multiscales=[[], [], [], [5], [5]],
        upsample_block_type="interpolate",
        downsample_block_type="Conv",
        decoder_norm_types="rms_norm",
        decoder_act_fns="silu",
        encoder_out_shortcut=True,
        decoder_in_shortcut=True,
        decoder_conv_act_fn="relu",
        scaling_factor=1.0,  # replaced by 1 / std of the trained encoder's latents
    )


def transformer_config(caption_channels: int) -> dict:
    return dict(
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        num_attention_heads=8,
        attention_head_dim=32,
        num_layers=8,
        num_cross_attention_heads=8,
        cross_attention_head_dim=32,
        cross_attention_dim=256,
        caption_channels=caption_channels,
        mlp_ratio=2.5,
        dropout=0.0,
        attention_bias=False,
        sample_size=LATENT_SIZE,
        patch_size=1,
        norm_elementwise_affine=False,
        norm_eps=1e-6,
        interpolation_scale=1.0,
        guidance_embeds=False,
        qk_norm=None,
        timestep_scale=1.0,
    )


def text_encoder_config(vocab_size: int) -> dict:
    return dict(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        query_pre_attn_scalar=64,
        hidden_activation="gelu_pytorch_tanh",
        max_position_embeddings=1024,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        attention_bias=False,
        attention_dropout=0.0,
        attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0,
        sliding_window=4096,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        tie_word_embeddings=True,
    )


def scheduler_config() -> dict:
    """SANA's Flow-DPM-Solver config as shipped with the diffusers SANA repos."""
    return dict(
        algorithm_type="dpmsolver++",
        beta_end=0.02,
        beta_schedule="linear",
        beta_start=0.0001,
        dynamic_thresholding_ratio=0.995,
        euler_at_final=False,
        final_sigmas_type="zero",
        flow_shift=3.0,
        lambda_min_clipped=float("-inf"),
        lower_order_final=True,
        num_train_timesteps=1000,
        prediction_type="flow_prediction",
        sample_max_value=1.0,
        solver_order=2,
        solver_type="midpoint",
        steps_offset=0,
        thresholding=False,
        timestep_spacing="linspace",
        use_beta_sigmas=False,
        use_exponential_sigmas=False,
        use_flow_sigmas=True,
        use_karras_sigmas=False,
        use_lu_lambdas=False,
        variance_type=None,
    )


FLOW_SHIFT = 3.0

# Sampling defaults documented in the model card.
SAMPLE_STEPS = 20
SAMPLE_GUIDANCE = 4.5


def complex_human_instruction() -> list[str]:
    """SanaPipeline's default complex human instruction (read from diffusers, not copied)."""
    import inspect

    from diffusers import SanaPipeline

    return list(inspect.signature(SanaPipeline.__call__).parameters["complex_human_instruction"].default)


def tokenize_prompts(tokenizer, prompts: list[str], max_sequence_length: int, chi: list[str] | None):
    """Token ids and mask exactly as ``SanaPipeline._get_gemma_prompt_embeds`` builds them.

    With ``chi`` (positive prompts) the instruction is prepended and the result is padded to
    ``n_chi + max_sequence_length - 2``; without (the negative prompt) it is padded to ``max_sequence_length``.
    Returns (input_ids [B, T], attention_mask [B, T]) as torch int64 tensors.
    """
    tokenizer.padding_side = "right"
    prompts = [p.lower().strip() for p in prompts]
    if chi:
        chi_prompt = "\n".join(chi)
        prompts = [chi_prompt + p for p in prompts]
        max_length_all = len(tokenizer.encode(chi_prompt)) + max_sequence_length - 2
    else:
        max_length_all = max_sequence_length
    enc = tokenizer(prompts, padding="max_length", max_length=max_length_all, truncation=True,
                    add_special_tokens=True, return_tensors="pt")
    return enc.input_ids, enc.attention_mask


def select_positive(hidden, mask, max_sequence_length: int):
    """``encode_prompt``'s selection for the positive branch: position 0 and the last ``L - 1`` positions."""
    select_index = [0] + list(range(-max_sequence_length + 1, 0))
    return hidden[:, select_index], mask[:, select_index]
