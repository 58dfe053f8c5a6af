"""The v4 training configs: the CPU recipe (m) and the one-command GPU stage (m_gpu) resolve to what
their files promise, and the m network trains a step with the torch synthesizer on CPU."""
import dataclasses

import numpy as np
import torch
from PIL import Image

from weather_restore.training.train_config import load_train_config
from weather_restore.training.trainer import Trainer

import train_helpers


def test_m_and_m_gpu_resolve():
    m, gpu, cont = load_train_config("m"), load_train_config("m_gpu"), load_train_config("m_cont")
    assert (m.model, m.synth, m.batch, m.crop) == ("m", "numpy", 8, 128)
    # the default's network (m plus the density refiner) in fp32: bf16 with the refiner is tested on the CPU only
    assert (gpu.model, gpu.synth, gpu.amp) == ("m_dr2", "torch", "off")
    assert cont.init_weights == "weights/weather_m_v4_preview.safetensors"   # how weather-m-v4 was made
    haze = load_train_config("m_haze")                                      # the next stages continue v4
    assert haze.init_weights == "weights/weather_m_v4.safetensors"            # how v4.1 was made
    from weather_restore.pipeline.weights import default_restorer
    from weather_restore.models.weights_io import load_restorer
    # a lent GPU continues the default's restorer: v4.17 is v4.16's weights plus a raindrop stage trained on its
    # own (training/drop_stage.py) and attached at export, so m_gpu starts from v4.16, whose tensors it holds
    default, start = load_restorer(default_restorer()["path"]), load_restorer(gpu.init_weights)
    assert default.drop_stage is not None and start.drop_stage is None
    ours = {k: v for k, v in default.state_dict().items() if not k.startswith("drop_stage.")}
    assert ours.keys() == start.state_dict().keys()
    assert all(torch.equal(v, start.state_dict()[k]) for k, v in ours.items())
    assert gpu.recipe_weights == load_train_config("m_rainfirst").recipe_weights   # light rain half the mix
    assert haze.recipe_weights["haze"] > cont.recipe_weights["haze"]        # gives haze its share back
    psnr = load_train_config("m_psnr")                                      # the stage that made the default:
    density = ("density", "density_recall")
    assert {k: v for k, v in _other_losses(gpu.loss).items() if k not in density} == \
        {k: v for k, v in _other_losses(m.loss).items() if k not in density}   # m's losses, except
    assert (gpu.loss["pixel"], gpu.loss["psnr"]) == (psnr.loss["pixel"], psnr.loss["psnr"])  # its image terms
    recall = load_train_config("m_drecall2")                                # and the density terms of the
    assert [gpu.loss[k] for k in density] == [recall.loss[k] for k in density] == [0.5, 5.0]  # default's stage
    assert gpu.loss["gt_signal_prob"] == 0.25
    assert all(r.startswith(".devdata/") for r in gpu.data_roots)         # the photos carried to the device
    assert cont.ema_warmup is False and cont.warmup == 50
    assert start.cfg.name == gpu.model                                      # and loads as m_gpu's network


def test_m_network_trains_with_the_torch_synthesizer_on_cpu(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (96, 120, 3), dtype=np.uint8)).save(root / f"{i}.png")
    cfg = train_helpers.tiny_train_config(model="m", synth="torch", crop=64, steps=2, data_roots=[str(root)])
    tr = Trainer(cfg, tmp_path / "run", show_progress=False)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.fit()
    moved = [k for k, v in tr.model.state_dict().items() if not torch.equal(v, before[k])]
    assert tr.step == 2 and any(k.startswith("body.3.") for k in moved) and any(k.startswith("decoder.2.") for k in moved)


def test_the_prior_scale_and_nlcl_stages_resolve():
    """m_prior_scale retrains only the prior head, on crops the size of the analysis image (the head
    judges the whole photo at up to ANALYSIS_SIZE, not the 128 px crops the full stages use); m_nlcl then
    trains everything else, with that head frozen, on real rain beside the synthetic pairs."""
    from weather_restore.models.restorer import WeatherRestorer
    from weather_restore.models.config import load_config
    from weather_restore.models.tiling import ANALYSIS_SIZE
    prior, nlcl = load_train_config("m_prior_scale"), load_train_config("m_nlcl")
    assert (prior.stage, prior.trainable, prior.loss["density"]) == ("signals", ["prior_head"], 0.0)
    assert 0.5 * ANALYSIS_SIZE <= prior.crop <= ANALYSIS_SIZE and prior.init_weights == "weights/weather_m_v4_1.safetensors"
    assert nlcl.init_weights == "runs/m_prior_scale/last.pt" and nlcl.nlcl["enabled"]
    assert nlcl.nlcl["lowpass_weight"] > 0 and nlcl.loss["gt_signal_prob"] == 0.5
    children = {n for n, _ in WeatherRestorer(load_config("m"), device="meta").named_children()}
    assert set(nlcl.trainable) == children - {"prior_head"}              # nothing else is left frozen
    # after NLCL, the prior head is trained again with its fine levels (new on top of the v4.1 head)
    fine = load_train_config("m_prior_fine")
    assert (fine.stage, fine.trainable, fine.crop) == ("signals", ["prior_head"], prior.crop)
    assert fine.init_weights == "runs/m_prior_scale/last.pt" and fine.new_modules == ["prior_head.extra"]
    assert fine.model == "m_fine_prior" and prior.model == nlcl.model == "m" and not prior.new_modules
    # v4.2: the body trains on from there with the head frozen, then the head is recalibrated on it
    body, recal = load_train_config("m_body"), load_train_config("m_prior_recal")
    assert set(body.trainable) == children - {"prior_head"} and body.init_weights == "runs/m_prior_fine/last.pt"
    assert body.model == recal.model == "m_fine_prior" and recal.new_modules == []
    assert (recal.stage, recal.trainable, recal.crop, recal.init_weights) == \
        ("signals", ["prior_head"], prior.crop, "runs/m_body/last.pt")


def test_a_signals_stage_with_trainable_prior_head_moves_only_that_head(tmp_path):
    cfg = train_helpers.tiny_train_config(stage="signals", trainable=["prior_head"], steps=2,
                                          loss={"prior": 1.0, "density": 0.0, "quality": 0.0})
    tr = Trainer(cfg, tmp_path / "run", dataset=train_helpers.FakeWeather(), show_progress=False)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.fit()
    moved = {k.split(".")[0] for k, v in tr.model.state_dict().items() if not torch.equal(v, before[k])}
    assert moved == {"prior_head"}


def test_the_rain_stage_continues_the_default_and_its_head_is_recalibrated():
    """m_rain: the body trains on from weather-m-v4.2 with the light-rain bias of m_cont (the stage whose
    Rain100L curve was still rising) and haze kept near its share; m_rain_prior then re-fits the prior
    head at the analysis scale, as m_prior_scale did for v4.2 (a full stage trains it on 128 px crops)."""
    rain, head = load_train_config("m_rain"), load_train_config("m_rain_prior")
    cont, scale = load_train_config("m_cont"), load_train_config("m_prior_scale")
    assert rain.init_weights == "weights/weather_m_v4_2.safetensors" and rain.stage == "full"
    assert rain.trainable is None and rain.model == "m" and rain.synth == "torch"
    w = rain.recipe_weights
    assert max(w, key=w.get) == "rain_light" and w["haze"] >= cont.recipe_weights["haze"]
    assert abs(sum(w.values()) - 1.0) < 1e-6 and rain.loss["gt_signal_prob"] == 0.1
    assert (head.stage, head.trainable, head.crop, head.init_weights) == \
        ("signals", ["prior_head"], scale.crop, "runs/m_rain/last.pt")
    assert head.recipe_weights == scale.recipe_weights and head.steps == scale.steps


def test_the_context_stage_trains_the_default_on_wider_crops_at_the_same_cost():
    """m_ctx: weather-m-v4.3 trained on with m_rain's mix on 192 px crops instead of 128, so that the
    window attention and scans of the 1/8 level see 24x24 instead of 16x16 (restore gives them 64x64),
    at about the pixels per step of m_rain (measured: no gain, docs/EXPERIMENTS.md)."""
    ctx, rain = load_train_config("m_ctx"), load_train_config("m_rain")
    from weather_restore.models.config import load_config
    net = load_config(ctx.model)
    assert ctx.init_weights == "weights/weather_m_v4_3.safetensors" and ctx.recipe_weights == rain.recipe_weights
    assert ctx.crop > rain.crop and ctx.loss == rain.loss and ctx.stage == "full"
    assert 1.0 <= (ctx.crop ** 2 * ctx.batch) / (rain.crop ** 2 * rain.batch) <= 1.2
    assert ctx.crop % net.stride == 0 and ctx.crop // net.stride >= 3     # whole windows, 3+ per side


def test_the_full_resolution_stage_grows_the_default_without_changing_its_output():
    """m_fr: weather-m-v4.3 with four more gated-conv blocks at full and half resolution (model config
    m_fr), then m_fr_prior re-fits its prior head at the analysis scale as m_rain_prior did. The added blocks are exactly the modules the file lacks, and their zero residual scales make
    the grown network restore as v4.3 does before training moves them."""
    from weather_restore.models import WeatherRestorer, load_config
    from weather_restore.models.weights_io import load_restorer
    from weather_restore.training.trainer import load_init_weights
    fr, rain = load_train_config("m_fr"), load_train_config("m_rain")
    head, scale = load_train_config("m_fr_prior"), load_train_config("m_prior_scale")
    assert head.model == fr.model and head.init_weights == "runs/m_fr/last.pt" and not head.new_modules
    assert (head.stage, head.trainable, head.crop, head.steps) == (scale.stage, scale.trainable, scale.crop, scale.steps)
    assert fr.recipe_weights == rain.recipe_weights and fr.loss == rain.loss and fr.crop == rain.crop
    big, small = load_config(fr.model), load_config("m")
    assert big.dims == small.dims and sum(big.enc_blocks) + sum(big.dec_blocks) == \
        sum(small.enc_blocks) + sum(small.dec_blocks) + 4
    grown = WeatherRestorer(big).eval()
    load_init_weights(grown, fr.init_weights, fr.new_modules)
    ref = load_restorer(fr.init_weights)
    added = {".".join(k.split(".")[:3]) for k in set(grown.state_dict()) - set(ref.state_dict())}
    assert added == set(fr.new_modules)
    x = torch.rand(1, 3, 72, 88, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = grown(x).image, ref(x).image
    assert a.shape == (1, 3, 72, 88) and torch.equal(a, b)


def test_the_raindrop_stage_trains_the_default_on_more_drops_and_wider_crops():
    """m_drops: weather-m-v4.3 (network m) trained on with raindrops the largest share of the mix (8 % in
    m_rain, where the body never learned them) on 192 px crops, about m_rain's pixels per step, so a crop
    holds whole drops and the scene around them; m_drops_prior re-fits the prior head as m_rain_prior did."""
    drops, rain = load_train_config("m_drops"), load_train_config("m_rain")
    head, scale = load_train_config("m_drops_prior"), load_train_config("m_prior_scale")
    from weather_restore.models.config import load_config
    assert drops.init_weights == "weights/weather_m_v4_3.safetensors" and drops.model == rain.model == "m"
    w = drops.recipe_weights
    assert set(w) == set(rain.recipe_weights) and abs(sum(w.values()) - 1.0) < 1e-6
    assert max(w, key=w.get) == "raindrops" and w["raindrops"] >= 4 * rain.recipe_weights["raindrops"]
    assert w["rain_light"] + w["rain_heavy"] >= 0.3                      # rain stays the next largest share
    assert drops.loss == rain.loss and drops.stage == "full" and drops.trainable is None
    assert 1.0 <= (drops.crop ** 2 * drops.batch) / (rain.crop ** 2 * rain.batch) <= 1.2
    assert drops.crop % load_config(drops.model).stride == 0
    assert (head.stage, head.trainable, head.crop, head.steps, head.init_weights) == \
        (scale.stage, scale.trainable, scale.crop, scale.steps, "runs/m_drops/last.pt")


def test_the_rain_first_stage_gives_light_rain_half_the_mix_and_keeps_haze():
    """m_rainfirst: weather-m-v4.4 trained on with light rain half of the mix (a 400-step pure light-rain
    probe gained 0.9 dB on 20 Rain100L pairs but lost all of HSTS: its prior head forgot haze), haze
    recipes kept near m_rain's share and few clean photos. m_rainfirst_prior re-fits the head as before,
    on a mix with more light rain and clean photos than m_prior_scale's (fewer haze readings on rain
    photos: with m_prior_scale's mix the misty real photo darkened by 17-19 levels instead of 10-11)."""
    first, drops = load_train_config("m_rainfirst"), load_train_config("m_drops")
    rain, scale = load_train_config("m_rain"), load_train_config("m_prior_scale")
    head = load_train_config("m_rainfirst_prior")
    assert first.init_weights == "weights/weather_m_v4_4.safetensors" and first.model == "m"
    w = first.recipe_weights
    assert set(w) == set(rain.recipe_weights) and abs(sum(w.values()) - 1.0) < 1e-6
    assert w["rain_light"] >= 0.5 and w["rain_light"] >= 1.5 * rain.recipe_weights["rain_light"]
    hazy = lambda m: m["haze"] + m["rain_haze"] + m["snow_haze"]            # noqa: E731
    assert hazy(w) >= 0.85 * hazy(rain.recipe_weights) and w["clean"] < rain.recipe_weights["clean"]
    assert (first.crop, first.batch, first.loss, first.stage) == (drops.crop, drops.batch, drops.loss, "full")
    assert (head.stage, head.trainable, head.crop, head.steps, head.init_weights) == \
        (scale.stage, scale.trainable, scale.crop, scale.steps, "runs/m_rainfirst/last.pt")
    hw, sw = head.recipe_weights, scale.recipe_weights
    assert set(hw) == set(sw) and abs(sum(hw.values()) - 1.0) < 1e-6
    assert hw["rain_light"] > sw["rain_light"] and hw["clean"] > sw["clean"] and hazy(hw) >= 0.85 * hazy(sw)


def test_the_second_rain_first_stage_continues_the_default_with_more_light_rain():
    """m_rainfirst2 (measured, docs/EXPERIMENTS.md): weather-m-v4.5 trained on with light rain two thirds of
    the mix and a fifth hazy, to see whether a larger light-rain share keeps paying after m_rainfirst."""
    second, first = load_train_config("m_rainfirst2"), load_train_config("m_rainfirst")
    assert second.init_weights == "weights/weather_m_v4_5.safetensors" and second.stage == "full"
    w, f = second.recipe_weights, first.recipe_weights
    assert set(w) == set(f) and abs(sum(w.values()) - 1.0) < 1e-6
    assert w["rain_light"] > f["rain_light"] and w["haze"] + w["rain_haze"] + w["snow_haze"] >= 0.19
    assert (second.crop, second.batch, second.loss, second.lr) == (first.crop, first.batch, first.loss, first.lr)
    head, first_head = load_train_config("m_rainfirst2_prior"), load_train_config("m_rainfirst_prior")
    assert head.init_weights == "runs/m_rainfirst2/last.pt" and head.recipe_weights == first_head.recipe_weights
    assert (head.stage, head.trainable, head.crop, head.steps) == \
        (first_head.stage, first_head.trainable, first_head.crop, first_head.steps)


def test_the_psnr_stage_continues_the_default_on_the_rain_first_mix_with_a_per_sample_psnr_loss():
    """m_psnr: weather-m-v4.5 trained on with m_rainfirst's mix, half the Charbonnier term and minus the
    PSNR of each sample (the benchmarks' measure, which weighs an almost clean crop's last errors more
    than Charbonnier does); its head re-fitted as m_rainfirst_prior."""
    stage, first = load_train_config("m_psnr"), load_train_config("m_rainfirst")
    assert stage.init_weights == "weights/weather_m_v4_5.safetensors" and stage.stage == "full"
    assert stage.recipe_weights == first.recipe_weights
    assert (stage.loss["pixel"], stage.loss["psnr"], first.loss["psnr"]) == (0.5, 0.01, 0.0)
    same = {k: v for k, v in stage.loss.items() if k not in ("pixel", "psnr")}
    assert same == {k: v for k, v in first.loss.items() if k not in ("pixel", "psnr")}
    assert (stage.crop, stage.batch, stage.lr) == (first.crop, first.batch, first.lr)
    head, first_head = load_train_config("m_psnr_prior"), load_train_config("m_rainfirst_prior")
    assert head.init_weights == "runs/m_psnr/last.pt"
    assert (head.stage, head.trainable, head.crop, head.steps, head.recipe_weights, head.seed) == \
        (first_head.stage, first_head.trainable, first_head.crop, first_head.steps, first_head.recipe_weights,
         first_head.seed)


def _other_losses(loss: dict) -> dict:
    """A stage's loss weights other than its image terms (Charbonnier `pixel` and `psnr`)."""
    return {k: v for k, v in loss.items() if k not in ("pixel", "psnr")}


def _continues(name: str, first_name: str):
    """(stage, first): `name` trains `first_name`'s body on (a full stage from runs/<first>/last.pt) with
    its recipe mix, crops and batch."""
    stage, first = load_train_config(name), load_train_config(first_name)
    assert stage.init_weights == f"runs/{first_name}/last.pt" and stage.stage == "full"
    assert (stage.recipe_weights, stage.crop, stage.batch) == (first.recipe_weights, first.crop, first.batch)
    return stage, first


def _head_refit_follows(body: str):
    """`<body>_prior` re-fits the prior head on runs/<body>/last.pt as m_rainfirst_prior does."""
    head = load_train_config(f"{body}_prior")
    assert head.init_weights == f"runs/{body}/last.pt"
    assert head.recipe_weights == load_train_config("m_rainfirst_prior").recipe_weights


def test_the_second_psnr_stage_continues_m_psnr_on_a_new_shorter_schedule():
    """m_psnr2: m_psnr's body (before its head re-fit) trained on with the same losses and mix, a lower peak
    lr and another seed; its head re-fitted as m_rainfirst_prior."""
    stage, first = _continues("m_psnr2", "m_psnr")
    assert stage.loss == first.loss
    assert stage.lr < first.lr and stage.steps < first.steps and stage.seed != first.seed
    _head_refit_follows("m_psnr2")


def test_the_third_psnr_stage_weighs_the_psnr_term_more():
    """m_psnr3: m_psnr's body trained on with the Charbonnier term halved again and the per-crop PSNR
    term doubled, everything else of m_psnr (mix, crops, other losses) kept."""
    stage, first = _continues("m_psnr3", "m_psnr")
    assert stage.loss["pixel"] == first.loss["pixel"] / 2 and stage.loss["psnr"] == 2 * first.loss["psnr"]
    assert _other_losses(stage.loss) == _other_losses(first.loss)
    assert stage.seed not in (first.seed, load_train_config("m_psnr2").seed)


def test_the_near_layer_stage_is_m_psnr_on_the_new_light_rain():
    """m_near: m_psnr's body trained on with m_psnr's losses and mix (the light rain now draws a near
    layer in half of its samples, training/synth_torch/rain.py); its head re-fitted as m_rainfirst_prior."""
    stage, first = _continues("m_near", "m_psnr")
    assert stage.synth == "torch" and stage.loss == first.loss
    assert stage.seed not in (first.seed, load_train_config("m_psnr2").seed, load_train_config("m_psnr3").seed)
    _head_refit_follows("m_near")


def test_the_second_near_layer_stage_continues_m_near_on_a_short_schedule():
    """m_near2: m_near's body trained on with the same mix and losses, a lower peak lr, another seed; its
    head re-fitted as m_rainfirst_prior."""
    stage, first = _continues("m_near2", "m_near")
    assert stage.loss == first.loss
    assert stage.lr < first.lr and stage.steps < first.steps and stage.seed != first.seed
    _head_refit_follows("m_near2")


def test_the_wind_stage_continues_m_near_on_slanted_rain():
    """m_wind: m_near's body trained on with its mix, losses and schedule on the synthesizer whose light
    rain and downpours also fall slanted (training/synth_torch/rain.py, WIND_SHARE); its head re-fitted
    as m_rainfirst_prior."""
    stage, first = _continues("m_wind", "m_near")
    assert stage.synth == "torch" and stage.loss == first.loss
    assert (stage.lr, stage.steps) == (first.lr, first.steps) and stage.seed not in (first.seed, load_train_config("m_near2").seed)
    _head_refit_follows("m_wind")


def test_the_dense_rain_stage_continues_v4_8():
    """m_dense: weather-m-v4.8 (a bundled file, so any machine can run it) trained on with m_wind's mix, crops,
    losses and schedule on light rain that is dense and bright in 30 % of its samples; its head re-fitted as
    m_rainfirst_prior."""
    stage, first = load_train_config("m_dense"), load_train_config("m_wind")
    assert stage.init_weights == "weights/weather_m_v4_8.safetensors" and stage.stage == "full"
    assert (stage.recipe_weights, stage.crop, stage.batch) == (first.recipe_weights, first.crop, first.batch)
    assert stage.synth == "torch" and stage.loss == first.loss
    assert (stage.lr, stage.steps) == (first.lr, first.steps) and stage.seed != first.seed
    _head_refit_follows("m_dense")


def test_the_density_stage_adds_a_refiner_to_v4_9_without_changing_its_output():
    """m_dsig: weather-m-v4.9 plus a full-resolution density refiner (model config m_dr: 6 dilated blocks, a
    receptive field of ~130 px, to tell streaks from edges), trained alone against the synthesizer's maps in a
    signals stage, in fp32 (bf16 crashed on the CPU; docs/EXPERIMENTS.md). Before training the grown network
    restores as v4.9 does, to float rounding (the refiner starts as the identity)."""
    from weather_restore.models import WeatherRestorer, load_config
    from weather_restore.models.weights_io import load_restorer
    from weather_restore.training.trainer import load_init_weights
    stage, dense = load_train_config("m_dsig"), load_train_config("m_dense")
    assert stage.init_weights == "weights/weather_m_v4_9.safetensors" and stage.stage == "signals"
    assert stage.trainable == ["density_head", "density_refiner"] and stage.new_modules == ["density_refiner"]
    assert stage.amp == "off" and stage.recipe_weights == dense.recipe_weights
    assert (stage.loss["prior"], stage.loss["density"], stage.loss["quality"]) == (0.0, 1.0, 0.0)
    cfg, base = load_config(stage.model), load_config("m")
    assert (cfg.density_refine, cfg.density_refine_blocks) == (16, 6)
    assert dataclasses.replace(cfg, name="m", density_refine=0, density_refine_blocks=base.density_refine_blocks) == base
    grown = WeatherRestorer(cfg).eval()
    load_init_weights(grown, stage.init_weights, stage.new_modules)
    ref = load_restorer(stage.init_weights)
    x = torch.rand(1, 3, 72, 88, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = grown(x), ref(x)
    assert (a.image - b.image).abs().max() < 1e-5, (a.image - b.image).abs().max()
    assert (a.pred_density_logits - b.pred_density_logits).abs().max() < 1e-5


def test_the_half_resolution_density_stage_is_m_dsig_with_the_refiner_at_half_resolution():
    from weather_restore.models import load_config
    half, full = load_train_config("m_dsig2"), load_train_config("m_dsig")
    assert dataclasses.replace(half, name=full.name, model=full.model) == full
    assert dataclasses.replace(load_config(half.model), name="m_dr", density_refine_scale=1) == load_config(full.model)
    assert load_config(half.model).density_refine_scale == 2


def test_the_body_stage_of_v4_10_trains_everything_on_the_refined_maps():
    """m_dbody: m_dsig2's network (v4.9 plus the half-resolution refiner, trained alone) trained whole on m_dense's
    mix and losses, the density label loss raised to 0.3, in fp32 (bf16 autocast crashed with the refiner on the
    CPU); its prior head re-fitted as m_rainfirst_prior's, in fp32 too, on the same network."""
    stage, dense = load_train_config("m_dbody"), load_train_config("m_dense")
    assert stage.init_weights == "runs/m_dsig2/last.pt" and stage.model == load_train_config("m_dsig2").model
    assert stage.stage == "full" and stage.trainable is None and stage.amp == "off"
    assert stage.recipe_weights == dense.recipe_weights and (stage.crop, stage.batch) == (dense.crop, dense.batch)
    assert stage.loss == {**dense.loss, "density": 0.3}
    assert stage.lr < dense.lr and stage.seed != dense.seed
    _head_refit_follows("m_dbody")
    head = load_train_config("m_dbody_prior")
    assert head.model == stage.model and head.amp == "off" and head.trainable == ["prior_head"]


def test_the_recall_stages_continue_each_other_and_push_the_density_map_further():
    """m_drecall -> m_drecall2 (v4.12) -> m_drecall3 (not shipped): each starts from the last one's EMA, on the same
    mix, with the density loss weighing more and leaning further towards recall; their head re-fits read them."""
    names = ("m_drecall", "m_drecall2", "m_drecall3")
    stages = [load_train_config(n) for n in names]
    for prev, stage in zip(names, stages[1:]):
        assert stage.init_weights == f"runs/{prev}/last.pt"
        assert stage.recipe_weights == stages[0].recipe_weights and stage.model == "m_dr2"
    assert [(s.loss["density"], s.loss["density_recall"]) for s in stages] == [(0.3, 3.0), (0.5, 5.0), (1.0, 8.0)]
    # m_drecall ran the SRD term every step (before the option existed); its config now inherits m's 4
    assert [s.loss["srd_every"] for s in stages] == [4, 1, 4]
    for n in names:
        prior = load_train_config(f"{n}_prior")
        assert prior.init_weights == f"runs/{n}/last.pt" and prior.trainable == load_train_config("m_dbody_prior").trainable


def test_the_mirror_stage_continues_v4_12_towards_its_own_mirror_ensemble():
    """m_mirror: m_drecall2's mix and losses from the shipped v4.12, plus the pull towards v4.12's mirror ensemble
    (the teacher defaults to the starting weights); its head re-fit reads it."""
    stage, before = load_train_config("m_mirror"), load_train_config("m_drecall2")
    assert stage.init_weights == "weights/weather_m_v4_12.safetensors" and stage.loss["mirror_teacher"] is None
    assert stage.loss["mirror_distill"] == 1.0 and before.loss["mirror_distill"] == 0.0
    assert stage.recipe_weights == before.recipe_weights and stage.model == before.model == "m_dr2"
    assert {k: v for k, v in stage.loss.items() if k not in ("mirror_distill", "srd_every")} == \
        {k: v for k, v in before.loss.items() if k not in ("mirror_distill", "srd_every")}
    for name in ("m_mirror", "m_mirror2"):
        prior = load_train_config(f"{name}_prior")
        assert prior.init_weights == f"runs/{name}/last.pt" and prior.trainable == load_train_config("m_dbody_prior").trainable
    # the second round starts from the first round's shipped weights (v4.13), which are also its teacher
    again = load_train_config("m_mirror2")
    assert again.init_weights == "weights/weather_m_v4_13.safetensors" and again.loss == stage.loss


def test_the_large_rain_stage_continues_v4_13_on_m_drecall2s_mix():
    """m_large: v4.13 trained on m_drecall2's mix and losses (no mirror teacher), while the torch synthesizer
    draws 30 % of the rain larger (training/synth_torch/rain.py LARGE_SHARE); its crops hold 3x rain; its head
    re-fit reads it."""
    from weather_restore.training.synth_torch import rain
    stage, before = load_train_config("m_large"), load_train_config("m_drecall2")
    assert stage.init_weights == "weights/weather_m_v4_13.safetensors" and stage.synth == "torch"
    assert stage.recipe_weights == before.recipe_weights and stage.model == before.model == "m_dr2"
    assert stage.loss["mirror_distill"] == 0.0 and stage.loss["srd_every"] == 4
    assert {k: v for k, v in stage.loss.items() if k != "srd_every"} == \
        {k: v for k, v in before.loss.items() if k != "srd_every"}
    assert rain.LARGE_SHARE > 0 and stage.crop >= rain.LARGE_RANGE[1] * rain.LARGE_CROP
    prior = load_train_config("m_large_prior")
    assert prior.init_weights == "runs/m_large/last.pt" and prior.trainable == load_train_config("m_dbody_prior").trainable


def test_the_thin_rain_stage_continues_v4_14_on_m_larges_mix():
    """m_thin: v4.14 trained on m_large's mix and losses while the torch synthesizer draws its dense, bright light
    rain thin (training/synth_torch/rain.py DENSE_WIDEN 1.0; v4.14 learned it 1.3x wider); its head re-fit reads it."""
    from weather_restore.training.synth_torch import rain
    stage, before = load_train_config("m_thin"), load_train_config("m_large")
    assert stage.init_weights == "weights/weather_m_v4_14.safetensors" and stage.synth == "torch"
    assert stage.recipe_weights == before.recipe_weights and stage.model == before.model == "m_dr2"
    assert stage.loss == before.loss and stage.steps == 3000 and stage.seed != before.seed
    assert rain.DENSE_WIDEN == 1.0 and rain.DENSE_LIGHT_SHARE == 0.3 and rain.LARGE_SHARE > 0
    # m_thin2 trains the same recipe on from m_thin's EMA (its curve still rose), on a new schedule and seed
    again = load_train_config("m_thin2")
    assert again.init_weights == "runs/m_thin/last.pt" and again.seed != stage.seed and again.lr < stage.lr
    assert again.loss == stage.loss and again.recipe_weights == stage.recipe_weights and again.model == stage.model
    third = load_train_config("m_thin3")                                   # measured, not shipped (EXPERIMENTS.md)
    assert third.init_weights == "runs/m_thin2/last.pt" and third.lr < again.lr and third.steps == 1500
    assert third.loss == stage.loss and third.seed not in (stage.seed, again.seed)
    for name in ("m_thin", "m_thin2", "m_thin3"):
        prior = load_train_config(f"{name}_prior")
        assert prior.init_weights == f"runs/{name}/last.pt" and prior.trainable == load_train_config("m_dbody_prior").trainable


def test_soup_stages_are_one_recipe_from_v4_15_apart_from_the_seed():
    """m_soup1-5: v4.15 trained on for 400 steps at lr 1e-4, each from its own seed, so that their EMA weights
    (averaged with v4.15 by `export --blend`, docs/TRAINING.md) differ only by the samples drawn."""
    stages = [load_train_config(f"m_soup{i}") for i in range(1, 6)]
    large = load_train_config("m_large")
    assert len({s.seed for s in stages}) == 5 and large.seed not in {s.seed for s in stages}
    for s in stages:
        assert s.init_weights == "weights/weather_m_v4_15.safetensors" and s.model == large.model == "m_dr2"
        assert s.recipe_weights == large.recipe_weights and s.loss == large.loss and s.synth == "torch"
        assert (s.steps, s.lr, s.warmup, s.ema_decay) == (400, 1e-4, 20, 0.99)
    assert load_train_config("m_thin4").init_weights == "weights/weather_m_v4_15.safetensors"  # measured, not kept
    prior = load_train_config("m_soup_prior")
    assert prior.init_weights == "runs/m_soup.safetensors"
    assert prior.trainable == load_train_config("m_dbody_prior").trainable and prior.amp == "off"
    assert load_train_config("m_thin4_prior").init_weights == "runs/m_thin4/last.pt"
    # the second soup (measured, not shipped): the same recipe from v4.16, new seeds
    again = [load_train_config(f"m_resoup{i}") for i in range(1, 4)]
    assert {s.seed for s in again}.isdisjoint({s.seed for s in stages}) and len({s.seed for s in again}) == 3
    for s in again:
        assert s.init_weights == "weights/weather_m_v4_16.safetensors"
        assert (s.steps, s.lr, s.recipe_weights, s.loss) == (400, 1e-4, large.recipe_weights, large.loss)
    assert load_train_config("m_resoup_prior").init_weights == "runs/m_resoup.safetensors"
    # a light-rain-heavy mix from v4.16 (measured, EXPERIMENTS.md): three quarters light rain, the same losses
    rainmix = [load_train_config(f"m_rainmix{i}") for i in range(1, 4)]
    assert len({s.seed for s in rainmix}) == 3 and {s.seed for s in rainmix}.isdisjoint({s.seed for s in stages + again})
    for s in rainmix:
        assert s.recipe_weights["rain_light"] == 0.75 and abs(sum(s.recipe_weights.values()) - 1) < 1e-9
        assert set(s.recipe_weights) == set(large.recipe_weights) and s.loss == large.loss and s.steps == 400
        assert s.init_weights == "weights/weather_m_v4_16.safetensors"
    assert load_train_config("m_rainsoup_prior").init_weights == "runs/m_rainsoup.safetensors"
