"""The simulated world: a B2B supplier's customer base, week by week (docs/simulator.md).

The stage that writes a world is `pipeline/simulate.py`; this package holds its parts, one idea
each, in the order a newcomer might read them:

- `constants`: the words the world uses (segments, channels, interaction types, departments,
  churn reasons, the trust types), the dtype of the latent state and the "no date" sentinel;
- `rates`: the tables of rates and probabilities the observable events are drawn from;
- `draws`: how one category is drawn per row from those tables;
- `dynamics`: each account's latent state and the weekly step that advances it;
- `settings`: `SimConfig`, the size, clock, truth and regime-shift settings of a world;
- `truth`: the Monte Carlo ground truth (the churn probability given the latent state);
- `world`: the world itself: accounts drawn, then advanced week by week;
- `emission`: the orders and interactions a week of latent state shows in the tables;
- `buffers`: the compact weekly event buffers the world fills;
- `columns`: fast string columns (ids, labels) built from integer codes;
- `tables`: the buffers turned into the five input tables and the truth frame;
- `write`: a world written to CSV or Parquet files in chunks.
"""
