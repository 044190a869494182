"""Every default of sora_lite, once. Other configs import this and override a few keys.

Each stage's architecture (what its checkpoint needs to rebuild the model) is a section
apart from how that stage trains: `ae` / `ae_train` for the autoencoder, `dit` / `train`
for the DiT, which points at a trained autoencoder with `train.autoencoder`.

python scripts/train_autoencoder.py --config configs/base.py --workdir runs/base_ae
python scripts/train.py --config configs/base.py --workdir runs/base --config.train.autoencoder=runs/base_ae
"""

from ml_collections import ConfigDict


def get_config() -> ConfigDict:
    c = ConfigDict()
    c.seed = 0

    # A generated data set (`name`: moving_shapes or camera_moves) at a mixture of shapes,
    # "FRAMESxHEIGHTxWIDTH:WEIGHT,..." (a weight is that entry's share of the steps; each step's
    # batch is one entry). The first entry is the model's default sampling shape. `train_size`
    # clips in all, split by weight.
    # With `folder`, your own captioned videos and images instead (datasets/video_folder.py; see
    # them cut with scripts/prepare_videos.py): resampled to `fps`, each file cut to the entries
    # nearest its aspect ratio; `train_size` is then unused. `partial_captions` = n: Camera Moves
    # also trains on each attribute alone, n times beside its templates twice (n / (3 + n) of
    # the draws; datasets/camera_moves.py).
    c.data = ConfigDict(dict(name="moving_shapes", dir="data", mixture="17x32x32", train_size=50_000, folder="",
                             fps=8.0, partial_captions=0))
    # Text tokens a caption is padded to; a longer prompt, to the next multiple (text.py).
    c.text = ConfigDict(dict(max_len=16))

    # The autoencoder's architecture.
    c.ae = ConfigDict(dict(space_factor=4,  # 4 or 8; needs log2(space_factor) widths
                           widths=(64, 128),
                           blocks=1,  # residual blocks per encoder stage (decoder: one more)
                           latent_channels=16,
                           linear_skip=False,  # a linear pixels <-> latent map beside the network
                           base=None))  # a frozen autoencoder's architecture, its latent the first channels
                                        # (set from ae_train.base)
    # How scripts/train_autoencoder.py trains it: the whole VAE for `steps`, then the decoder
    # alone on the frozen encoder's latents (squared error) for `decoder_steps`: sharper videos,
    # same latents; 0 skips that phase. Batch sizes are those of the mixture's first entry;
    # the other entries' batches carry as many latent frames x pixels, rounded to a multiple of
    # the mesh's batch shards.
    # `init_from`: start from a trained autoencoder (its workdir, or a DiT model that carries one).
    # `base`: such an autoencoder, frozen inside this one: its latent is this one's first
    # channels, unchanged, and its decoding is added to this one's (a DiT of its latent widens
    # onto this one with `train.init_from`).
    c.ae_train = ConfigDict(dict(init_from="", base="", steps=4000, batch_size=8, lr=1e-3, kl_weight=1e-6,
                                 decoder_steps=3000, decoder_batch_size=4, decoder_lr=2e-3,
                                 warmup=200, log_every=50, checkpoint_every=500))

    # The DiT's architecture and compute.
    c.dit = ConfigDict(dict(size="S",
                            patch=(1, 2, 2),  # (pt, ph, pw) over latent (t, h, w)
                            precision="float32",  # compute dtype: float32 or bfloat16 (weights stay float32)
                            remat="none",  # what blocks recompute in the backward pass: none, dots or full
                            # tokens also see their place as a fraction of the canvas (NaViT), not only
                            # RoPE's relative offsets: where a motion can start depends on the edges
                            canvas_position=True))

    c.diffusion = ConfigDict()
    c.diffusion.logit_mean = 0.0
    c.diffusion.logit_std = 1.0
    c.diffusion.base_tokens = 20  # timestep shift sqrt(tokens / base_tokens): 2 at 17x32x32 (80 tokens)
    c.diffusion.caption_dropout = 0.1
    c.diffusion.motion_weight = 0.0  # > 0: also the error in each latent frame's change from the last (diffusion.loss)
    # The error's weight on the latent channels an autoencoder adds to its base's (ae.base), the
    # base's being 1: below 1, a DiT widened from the base's latent keeps more of what it learnt.
    c.diffusion.detail_weight = 1.0

    # edit_strength: how much of a video `Pipeline.edit` noises before resampling (SDEdit), in (0, 1].
    # shift: multiplies the resolution shift of the sampling grid (> 1: steps crowd nearer noise,
    # where a few-step sampler decides the layout and the motion).
    # refine_above: frames of more pixels than this are sampled first at half the height and width
    # (again while above it), then refined from that video noised to time `refine_strength`
    # (sizing.sampling_sizes; 0: always in one go). supersample_below: images (one frame) of fewer
    # pixels than this are made at twice the height and width (again while below) and averaged
    # down (0: never).
    # Text-to-video only.
    c.sample = ConfigDict(dict(steps=25, guidance=4.0, edit_strength=0.6, shift=1.0, refine_above=0,
                               refine_strength=0.5, supersample_below=0))

    # How scripts/train.py trains the DiT, on the latents of the autoencoder in `autoencoder`.
    # `batch_size` is the mixture's first entry's; the other entries' batches carry as many tokens,
    # rounded to a multiple of the mesh's batch shards.
    c.train = ConfigDict(dict(
        autoencoder="",  # a scripts/train_autoencoder.py workdir
        init_from="",  # a DiT model (workdir or exported) to start from; its autoencoder unless `autoencoder` is set
        trainable="",  # a regular expression over parameter paths ("blocks/(attn|cross)"): only those train; "": all
        steps=10_000, batch_size=32, lr=3e-4, warmup=500, weight_decay=0.01, grad_clip=1.0,
        ema_decay=0.999,
        nonfinite_skips=0,  # NaN/Inf steps whose update is dropped before the run stops (counted in metrics)
        log_every=50, checkpoint_every=1000,
        sample_every=2000,  # sample videos of every mixture shape; 0: never
        eval_at_end=True,  # prompt accuracy at every mixture shape, and on the held-out vocabulary
        distill_pairs=0,  # > 0: learn from that many samples of the `init_from` model instead (distill.py)
        student_from=""))  # distilling: the student's first weights (e.g. an earlier student); "": the teacher's
    # Frames each training example is given (conditioning.py), as weights of the kinds: none
    # alone is plain text-to-video; first_frame animates images, head/tail extend, first_last
    # connects, keyframes interpolate.
    c.train.conditions = ConfigDict(dict(none=1.0, first_frame=0.0, head=0.0, tail=0.0, first_last=0.0,
                                         keyframes=0.0))

    # Device mesh (sora_lite/sharding.py); -1 = all remaining devices. On one device all are 1.
    c.mesh = ConfigDict(dict(data=-1, fsdp=1, tensor=1, sequence=1))
    c.keep_checkpoints = 3
    return c
