"""Few-step image sampling: solvers, timestep shift and the guidance interval (ddit/image_sampling.py)."""

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from helpers import generator as gen

from ddit import DualDiffusionPipeline
from ddit.flow_matching import classifier_free_guidance
from ddit.image_sampling import FLOW_SOLVERS, flow_scheduler, guided, planned_passes, solver_name


def test_guided_only_inside_the_interval():
    assert guided(0.5, 2.0, None) and not guided(0.5, 1.0, None)
    assert guided(0.7, 2.0, (0.5, 1.0)) and guided(0.5, 2.0, (0.5, 1.0))
    assert not guided(0.3, 2.0, (0.5, 1.0))


def test_interval_skips_the_unconditional_pass(pipe):
    """Inside the interval a step is the guided velocity, outside the conditional one alone."""
    steps, scale, interval = 4, 3.0, (0.6, 1.0)
    latents = torch.randn(1, 4, 8, 8, generator=gen(5))
    states = list(pipe.iter_generate("a red circle", num_inference_steps=steps, guidance_scale=scale,
                                     latents=latents.clone(), guidance_interval=interval))
    cond = pipe.encode_prompt(["a red circle"], pipe.defaults.generate.max_sequence_length)
    uncond = pipe.encode_prompt([""], pipe.defaults.generate.max_sequence_length)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    scheduler.set_timesteps(steps)
    x, passes = latents.clone(), 0
    with torch.no_grad():
        for i, t in enumerate(scheduler.timesteps):
            v = pipe.transformer(x, cond, t.reshape(1), return_logits=False).sample
            if scheduler.sigmas[i] >= interval[0]:
                v = classifier_free_guidance(pipe.transformer(x, uncond, t.reshape(1), return_logits=False).sample,
                                             v, scale)
                passes += 2
            else:
                passes += 1
            x = scheduler.step(v, t, x).prev_sample
    torch.testing.assert_close(states[-1].latents, x, rtol=1e-5, atol=1e-5)
    assert 4 < passes < 8  # some steps guided, some not
    assert states[-1].forward_passes == passes == planned_passes(pipe.scheduler, steps, scale, interval)


@pytest.mark.parametrize("solver", sorted(FLOW_SOLVERS))
def test_every_solver_samples_and_counts_its_passes(pipe, solver):
    pipe = DualDiffusionPipeline(**pipe.components, task_defaults=pipe.defaults.to_dict())
    pipe.scheduler = flow_scheduler(solver, shift=3.0)
    states = list(pipe.iter_generate("a red circle", num_inference_steps=4, guidance_scale=2.0, generator=gen(0)))
    assert solver_name(pipe.scheduler) == solver
    assert torch.isfinite(states[-1].latents).all()
    calls = 2 * 4 - 1 if solver == "heun" else 4  # Heun: two model calls per step, one for the last
    assert len(states) == calls and states[-1].forward_passes == 2 * calls
    assert planned_passes(pipe.scheduler, 4, 2.0, None) == 2 * calls


def test_shift_moves_steps_towards_noise():
    plain, shifted = flow_scheduler("euler", 1.0), flow_scheduler("euler", 3.0)
    plain.set_timesteps(8)
    shifted.set_timesteps(8)
    assert (shifted.sigmas[1:-1] > plain.sigmas[1:-1]).all()


def test_bad_solver_shift_and_interval_are_refused(pipe):
    with pytest.raises(ValueError, match="Unknown solver"):
        flow_scheduler("rk4")
    with pytest.raises(ValueError, match="shift"):
        flow_scheduler("euler", 0)
    for bad in ((0.8, 0.2), (0.0, 1.5), "high", (1,)):
        with pytest.raises(ValueError, match="guidance_interval"):
            pipe.iter_generate("a red circle", guidance_interval=bad)


def test_solver_and_interval_survive_save_and_load(pipe, tmp_path):
    saved = pipe.defaults.to_dict()
    saved["generate"]["guidance_interval"] = [0.5, 1.0]
    pipe = DualDiffusionPipeline(**pipe.components, task_defaults=saved)
    pipe.scheduler = flow_scheduler("dpm++2m", shift=2.0)
    pipe.save_pretrained(tmp_path)
    again = DualDiffusionPipeline.from_pretrained(tmp_path)
    assert solver_name(again.scheduler) == "dpm++2m" and again.scheduler.config.flow_shift == 2.0
    assert tuple(again.defaults.generate.guidance_interval) == (0.5, 1.0)
    a = pipe("a red circle", generator=gen(0), output_type="np").images
    b = again("a red circle", generator=gen(0), output_type="np").images
    torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b))
