#!/usr/bin/env python3
"""SCMScheduler.set_timesteps as SanaSprintPipeline calls it (Tests/Fixtures/FlowSolvers/scm_schedules.json).

Run from the repository root with the reference venv:  python tools/reference/scm_schedule.py

For each case: num_inference_steps, max_timesteps, intermediate_timesteps (None unless 2 steps, as the pipeline
requires) and the resulting float32 `timesteps`, plus the TrigFlow -> flow time `sin(t) / (cos(t) + sin(t))`
the pipeline feeds the transformer, computed with torch float32 ops.
"""
import json
import os

import torch
from diffusers import SCMScheduler

OUT = os.path.join("Tests", "Fixtures", "FlowSolvers", "scm_schedules.json")


def main() -> None:
    cases = []
    for steps, max_t, mid in [(1, 1.5708, None), (2, 1.5708, 1.3), (2, 1.2, 0.8), (3, 1.5708, None),
                              (4, 1.5708, None), (5, 1.4, None), (7, 1.5708, None), (20, 1.5708, None)]:
        sch = SCMScheduler(num_train_timesteps=1000, prediction_type="trigflow", sigma_data=0.5)
        sch.set_timesteps(steps, max_timesteps=max_t, intermediate_timesteps=mid)
        t = sch.timesteps.float()
        u = torch.sin(t) / (torch.cos(t) + torch.sin(t))
        cases.append(dict(steps=steps, max_timesteps=max_t, intermediate_timesteps=mid,
                          timesteps=[float(x) for x in t], flow_times=[float(x) for x in u[:-1]]))
    with open(OUT, "w") as f:
        json.dump({"cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
