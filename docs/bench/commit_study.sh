#!/usr/bin/env bash
# Issue #16: why `sampler=commit` does not beat `sampler=ode` at K = 4 (docs/samplers.md, last section).
# Every number of that section comes from this script. Run from the repository root:
#   CKPT=RUN_BASE/checkpoints/final.ckpt bash docs/bench/commit_study.sh     # all parts
#   bash docs/bench/commit_study.sh sweep          # part 1 only (the table), ~20 min on 1 CPU thread
#   bash docs/bench/commit_study.sh instrument     # part 2 only (per-step measurements, judge per position)
#   bash docs/bench/commit_study.sh check          # part 2b only (instrumentation == sample.py's tokens)
#   bash docs/bench/commit_study.sh figures        # part 3 only (needs parts 1 and 2)
# Part 2's pieces also run one at a time: python $OUT/instrument.py CKPT OUT {readout|commit|oracle|judge|variants|cap|variants2}
# CKPT: the plain CPU quickstart model (python train.py experiment=quickstart_embed, 800 steps).
set -euo pipefail
CKPT=${CKPT:?set CKPT to the plain quickstart model, e.g. CKPT=outputs/train/runs/<run>/checkpoints/final.ckpt}
OUT=${OUT:-/tmp/commit_study}
PART=${1:-all}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=offline
COMMON="ckpt_path=$CKPT num_samples=64 batch_size=64 print_samples=0 seed=0"
mkdir -p "$OUT"

if [[ $PART == all || $PART == sweep ]]; then
  # 1a. baselines at K = 4 and 8 (the same 64 initial noises as every commit run: seed 0)
  python sample.py -m $COMMON sampler=ode sampler.steps=4,8 hydra.sweep.dir=$OUT/sweep_ode
  python sample.py -m $COMMON sampler=sde sampler.gamma=1.5 sampler.steps=4,8 reference=false \
      hydra.sweep.dir=$OUT/sweep_sde
  # 1b. commit, threshold rules: rule x threshold x gamma x K = 2 x 5 x 2 x 2 = 40 points
  python sample.py -m $COMMON sampler=commit sampler.rule=confidence,margin sampler.threshold=0.3,0.5,0.7,0.9,0.99 \
      sampler.gamma=0,1.5 sampler.steps=4,8 reference=false hydra.sweep.dir=$OUT/sweep_commit
  # 1c. commit, schedule rule (threshold ignored): gamma x K = 4 points
  python sample.py -m $COMMON sampler=commit sampler.rule=schedule sampler.gamma=0,1.5 sampler.steps=4,8 \
      reference=false hydra.sweep.dir=$OUT/sweep_schedule
fi

# 2. instrumentation (~10 min): the same 64 seeds as part 1, step by step (readout of x̂ per step, commits per
#    step, agreement of commits with the base sampler's final tokens, how frequent the committed tokens are,
#    neighbours' changes by distance, an oracle test on held-out text, the judge per position, and the
#    variants `feed=clamp`, delayed schedule and sampled commits). Writes $OUT/instrument.json.
if [[ $PART == all || $PART == instrument ]]; then
  cat > "$OUT/instrument.py" <<'PY'
"""Issue #16 instrumentation of the commit sampler (docs/samplers.md, last section).

python instrument.py CKPT OUT  ->  OUT/instrument.json (+ a printed summary)
Same 64 seeds (seed 0) as sample.py num_samples=64, so every trajectory here is the one sample.py draws.
"""
import json
import math
import os
import sys
from collections import Counter

import torch

torch.set_num_threads(1)
from textflow.checkpoint import load_run  # noqa: E402
from textflow.data.heldout import heldout_blocks  # noqa: E402
from textflow.evaluation.judge import load_judge  # noqa: E402
from textflow.noise import per_sample_generators, randn  # noqa: E402
from textflow.kernels import top2_probs  # noqa: E402
from textflow.samplers.commit import sample_commit, select_commits  # noqa: E402
from textflow.samplers.steps import batch_time, churn_euler_step, euler_update  # noqa: E402
from textflow.time.grids import UniformTime  # noqa: E402
from textflow.types import SampleOutput  # noqa: E402

CKPT, OUT = sys.argv[1], sys.argv[2]
PART = sys.argv[3] if len(sys.argv) > 3 else "all"
run = load_run(CKPT)
den = run.denoiser(use_ema=True)
tok = run.tokenizer
N, L, D = 64, int(run.info["seq_len"]), den.autoencoder.latent_dim
THRESHOLDS = (0.3, 0.5, 0.7, 0.9, 0.99)
RES = {}


def init():
    gens = per_sample_generators(0, list(range(N)))
    return den.path.prior_scale() * randn((N, L, D), generator=gens), gens


# ---- unigram frequencies of held-out text (what "frequent token" means below)
blocks = heldout_blocks(run.config.data.corpus, tok, seq_len=L, num=1024)
counts = Counter(i for b in blocks for i in b)
TOP20 = torch.zeros(tok.vocab_size, dtype=torch.bool)
TOP20[[i for i, _ in counts.most_common(20)]] = True
total = sum(counts.values())
logp_uni = torch.full((tok.vocab_size,), math.log(0.5 / total))
for i, c in counts.items():
    logp_uni[i] = math.log(c / total)


def freq_stats(ids):
    ids = ids.flatten()
    if ids.numel() == 0:
        return {"n": 0}
    c = torch.bincount(ids, minlength=tok.vocab_size).float()
    p = c[c > 0] / c.sum()
    return {"n": int(ids.numel()), "top20_share": float(TOP20[ids].float().mean()),
            "unigram_surprisal": float(-logp_uni[ids].mean()), "type_entropy": float(-(p * p.log()).sum())}


heldout_ids = torch.tensor(blocks[:N])
RES["reference_heldout"] = freq_stats(heldout_ids)


@torch.no_grad()
def trajectory(k, gamma=0.0):
    """ode (gamma 0) / sde trajectory: per-step readout of x_hat (top-1, margin, argmax) and final tokens."""
    z, gens = init()
    grid = UniformTime().grid(k)
    steps = []
    for i in range(k):
        t, tn = batch_time(grid[i], z), batch_time(grid[i + 1], z)
        z, x_hat, *_ = churn_euler_step(den, z, t, tn, gamma=gamma, generator=gens, last=i == k - 1)
        top2, arg = top2_probs(den.readout(x_hat))
        steps.append({"t": float(grid[i]), "top1": top2[..., 0], "margin": top2[..., 0] - top2[..., 1], "arg": arg,
                      "xnorm": x_hat.norm(dim=-1)})
    final = den.readout(z).argmax(-1)
    return steps, final


# ---- 1. what the readout of x_hat looks like at each step of the ODE (hypotheses a, b)
def part_readout():
    out = {}
    for k in (4, 8):
        steps, final = trajectory(k)
        rows = []
        for i, s in enumerate(steps):
            row = {"step": i, "t": s["t"], "mean_top1": float(s["top1"].mean()),
                   "xhat_norm": float(s["xnorm"].mean()),
                   "agree_final": float((s["arg"] == final).float().mean()),
                   "argmax_freq": freq_stats(s["arg"]),
                   "frac_conf_ge": {str(th): float((s["top1"] >= th).float().mean()) for th in THRESHOLDS},
                   "frac_margin_ge": {str(th): float((s["margin"] >= th).float().mean()) for th in THRESHOLDS}}
            rows.append(row)
        out[f"K{k}"] = {"steps": rows, "final_freq": freq_stats(final),
                        "embed_norm": float(den.embed(final).norm(dim=-1).mean())}
    RES["ode_readout"] = out


# ---- 2. commit runs against their base sampler, same seeds (hypotheses a-e)
def commit_run(k, rule, threshold, gamma, feed="hold", pick="argmax", start=0):
    """The shipped sampler (feed=hold, pick=argmax) through textflow's own sample_commit; the variants
    (feed=clamp: the committed token's clean latent replaces x_hat in the shared-time Euler step instead
    of being held at per-token time 1) are re-implemented here."""
    z, gens = init()
    grid = UniformTime().grid(k)
    rec = []

    def cb(r):
        rec.append({"new": r.extras["newly_committed"].clone(), "top2": top2_probs(r.logits())[0]})

    if feed == "hold" and pick == "argmax" and start == 0:
        out = sample_commit(den, z, grid, generator=gens, callback=cb, rule=rule, threshold=threshold, gamma=gamma)
        return out, rec
    return commit_variant(z, gens, grid, rule=rule, threshold=threshold, gamma=gamma, feed=feed, rec=rec, pick=pick,
                          start=start), rec


@torch.no_grad()
def commit_variant(z, gens, grid, *, rule, threshold, gamma, feed, rec, pick="argmax", start=0):
    k = len(grid) - 1
    b, length = z.shape[:2]
    committed = torch.zeros(b, length, dtype=torch.bool)
    committed_step = torch.full((b, length), -1, dtype=torch.long)
    tokens = torch.zeros(b, length, dtype=torch.long)
    held = torch.zeros_like(z)
    for i in range(k):
        t, tn = batch_time(grid[i], z), batch_time(grid[i + 1], z)
        last = i == k - 1
        # feed=clamp: every position runs at the shared time; committed positions' x_hat is their token's
        # clean latent (Diffusion-LM clamping), so their z moves along the path towards it
        alpha = 1.0 if last else max(1.0 - gamma * float(tn[0] - t[0]), 0.0)
        if alpha < 1.0:
            noise = randn(z.shape, generator=gens, dtype=z.dtype)
            z_b, t_b = den.path.renoise(z, t, alpha, noise)
        else:
            z_b, t_b = z, t
        x_hat = den(z_b, t_b)
        logits = den.readout(x_hat)
        top2, arg = top2_probs(logits)
        if i < start:
            new = torch.zeros_like(committed)
        elif rule == "schedule" and start > 0:  # the quota spread over steps start..k-1
            new = select_commits(top2, committed, rule=rule, threshold=threshold, step=i - start, steps=k - start)
        else:
            new = select_commits(top2, committed, rule=rule, threshold=threshold, step=i, steps=k)
        if pick == "sample":  # a categorical decision: draw the token from the readout's softmax
            probs = logits.float().softmax(-1)
            arg = torch.stack([torch.multinomial(p, 1, generator=g).squeeze(-1) for p, g in zip(probs, gens)])
        tokens = torch.where(new, arg, tokens)
        held = torch.where(new.unsqueeze(-1), den.embed(tokens), held)
        committed_step = torch.where(new, torch.full_like(committed_step, i), committed_step)
        committed = committed | new
        x_used = torch.where(committed.unsqueeze(-1), held, x_hat)
        z = x_used if last else euler_update(den, z_b, x_used, t_b, tn)
        rec.append({"new": new.clone(), "top2": top2})
    final = den.readout(z).argmax(-1)
    return SampleOutput(latents=z, nfe=k, time_grid=grid, committed_step=committed_step,
                        tokens=torch.where(committed, tokens, final))


def nearest_commit_distance(mask):
    """(B, L) distance to the nearest True of mask in the same row (L + 1 where the row has none)."""
    b, length = mask.shape
    pos = torch.arange(length)
    d = (pos[None, :, None] - pos[None, None, :]).abs().expand(b, length, length).float()
    d = d.masked_fill(~mask[:, None, :], float(length + 1))
    return d.min(-1).values


BASE = {}


def base_final(k, gamma):
    if (k, gamma) not in BASE:
        BASE[(k, gamma)] = trajectory(k, gamma)[1]
    return BASE[(k, gamma)]


def summarize(k, rule, threshold, gamma, out, rec):
    base = base_final(k, gamma)
    cs = out.committed_step
    early = (cs >= 0) & (cs < k - 1)
    final = out.tokens
    per_step = [float(r["new"].float().mean()) for r in rec]
    conf_at = [float(r["top2"][..., 0][r["new"]].mean()) if bool(r["new"].any()) else None for r in rec]
    early_tok = final[early]
    dist = nearest_commit_distance(early)
    free = ~early
    changed = final != base
    bins = {"d1": free & (dist == 1), "d2-3": free & (dist >= 2) & (dist <= 3),
            "d>=4": free & (dist >= 4) & (dist <= L), "no_early_commit_in_row": free & (dist > L)}
    return {"K": k, "rule": rule, "threshold": threshold, "gamma": gamma,
            "commit_frac_per_step": per_step, "mean_conf_at_commit_per_step": conf_at,
            "cci": float(early.float().mean()), "committed_total": float((cs >= 0).float().mean()),
            "early_agree_with_base_final": float((early_tok == base[early]).float().mean()) if early.any() else None,
            "early_commit_freq": freq_stats(early_tok), "final_freq": freq_stats(final),
            "changed_vs_base": float(changed.float().mean()),
            "changed_uncommitted_by_distance": {n: (float(changed[m].float().mean()) if m.any() else None,
                                                    int(m.sum())) for n, m in bins.items()}}


GRID2 = [(k, r, th, g) for k in (4, 8) for g in (0.0, 1.5)
         for r, ths in (("confidence", THRESHOLDS), ("margin", THRESHOLDS), ("schedule", (0.0,))) for th in ths]
KEEP = {}


def part_commit():
    rows = []
    for k, r, th, g in GRID2:
        out, rec = commit_run(k, r, th, g)
        rows.append(summarize(k, r, th, g, out, rec))
        KEEP[("hold", k, r, th, g)] = out
    RES["commit_runs"] = rows


# ---- 3. oracle test of what a committed neighbour does to x_hat (hypothesis c), held-out text
@torch.no_grad()
def part_oracle():
    ids = heldout_ids
    x = den.embed(ids)
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(x.shape, generator=g)
    out = []
    for t0 in (0.25, 0.5, 0.75):
        t = torch.full((N,), t0)
        z = t0 * x + (1 - t0) * den.path.sigma * eps
        x_none = den(z, t)
        lg = den.readout(x_none)
        top1, arg = top2_probs(lg)[0][..., 0], lg.argmax(-1)
        for q in (0.25, 0.5):
            n_reveal = int(q * L)
            for choose in ("random", "confident"):
                if choose == "random":
                    score = torch.rand((N, L), generator=g)
                else:
                    score = top1
                order = score.argsort(1, descending=True).argsort(1)
                S = order < n_reveal
                rest = ~S
                adj = rest & (nearest_commit_distance(S) == 1)
                res = {"t": t0, "q": q, "choose": choose}
                for name, src in (("none", None), ("oracle", ids), ("self", arg)):
                    for feed in ("hold_t1", "clean_shared_t"):
                        if src is None and feed == "clean_shared_t":
                            continue
                        if src is None:
                            xh = x_none
                        else:
                            zz = torch.where(S.unsqueeze(-1), den.embed(src), z)
                            tt = torch.where(S, torch.ones_like(top1), t[:, None]) if feed == "hold_t1" else t
                            xh = den(zz, tt)
                        lg2 = den.readout(xh)
                        a2 = lg2.argmax(-1)
                        nll = -lg2.log_softmax(-1).gather(-1, ids[..., None]).squeeze(-1)
                        key = name if src is None else f"{name}_{feed}"
                        res[key] = {"acc_rest": float((a2 == ids)[rest].float().mean()),
                                    "acc_adjacent": float((a2 == ids)[adj].float().mean()),
                                    "nll_rest": float(nll[rest].mean()),
                                    "top1_rest": float(top2_probs(lg2)[0][..., 0][rest].mean()),
                                    "flip_vs_none_rest": float((a2 != arg)[rest].float().mean())}
                res["self_reveal_correct"] = float((arg == ids)[S].float().mean())
                out.append(res)
    RES["oracle"] = out


# ---- 4. the judge per position: where does a commit run's gen-PPL come from?
def char_spans(ids):
    spans, prev = [], ""
    for k in range(len(ids)):
        cur = tok.decode(ids[:k + 1])
        spans.append((min(len(prev), len(cur)), len(cur)))
        prev = cur
    return prev, spans


@torch.no_grad()
def position_nll(batch_ids):
    """(N, L) judge NLL attributed to each textflow position (sum of the judge tokens starting in its
    characters; NaN after an end-of-text token), and per-sample judge token counts."""
    model, jt = load_judge("smollm2", cache_dir=os.path.expanduser("~/.cache/textflow"))
    bos = jt.bos_token_id if jt.bos_token_id is not None else jt.eos_token_id
    res = torch.full((len(batch_ids), L), float("nan"))
    seqs, owners = [], []
    for r, ids in enumerate(batch_ids):
        ids = list(ids)
        if tok.eos_id in ids:
            ids = ids[:ids.index(tok.eos_id)]
        text, spans = char_spans(ids)
        enc = jt(text, add_special_tokens=False, return_offsets_mapping=True)
        own = []
        for (s, _e) in enc["offset_mapping"]:
            p = next((j for j, (a, b) in enumerate(spans) if a <= s < b), len(spans) - 1)
            own.append(p)
        res[r, :len(ids)] = 0.0
        seqs.append([bos, *enc["input_ids"]])
        owners.append(own)
    for lo in range(0, len(seqs), 16):
        chunk = seqs[lo:lo + 16]
        w = max(len(s) for s in chunk)
        inp = torch.full((len(chunk), w), bos, dtype=torch.long)
        mask = torch.zeros_like(inp)
        for j, s in enumerate(chunk):
            inp[j, :len(s)] = torch.tensor(s)
            mask[j, :len(s)] = 1
        lp = model(input_ids=inp, attention_mask=mask).logits.float().log_softmax(-1)
        lp = lp[:, :-1].gather(-1, inp[:, 1:, None]).squeeze(-1)
        for j, s in enumerate(chunk):
            for n, p in enumerate(owners[lo + j]):
                res[lo + j, p] -= float(lp[j, n])
    return res


JUDGED = [("hold", 4, "confidence", 0.3, 0.0), ("hold", 4, "confidence", 0.5, 0.0), ("hold", 4, "confidence", 0.7, 0.0),
          ("hold", 4, "schedule", 0.0, 0.0), ("hold", 4, "confidence", 0.5, 1.5), ("hold", 4, "schedule", 0.0, 1.5)]


def part_judge():
    rows = []
    base_nll = {}
    for g in (0.0, 1.5):
        base_nll[g] = position_nll(base_final(4, g).tolist())
    for key in JUDGED:
        feed, k, r, th, g = key
        out = KEEP.get(key)
        if out is None:
            out = commit_run(k, r, th, g, feed=feed)[0]
        nll = position_nll(out.tokens.tolist())
        cs = out.committed_step
        early = (cs >= 0) & (cs < k - 1)
        row = {"feed": feed, "K": k, "rule": r, "threshold": th, "gamma": g}
        ok = ~nll.isnan() & ~base_nll[g].isnan()
        for name, m in (("early_committed", early & ok), ("not_early", ~early & ok)):
            row[name] = {"n": int(m.sum()), "nll_commit_run": float(nll[m].mean()) if m.any() else None,
                         "nll_base_same_positions": float(base_nll[g][m].mean()) if m.any() else None}
        for s in range(k - 1):
            m = (cs == s) & ok
            row[f"step{s}"] = {"n": int(m.sum()), "nll_commit_run": float(nll[m].mean()) if m.any() else None,
                               "nll_base_same_positions": float(base_nll[g][m].mean()) if m.any() else None}
        rows.append(row)
    RES["judge_positions"] = rows
    RES["judge_positions_base_mean"] = {str(g): float(v[~v.isnan()].mean()) for g, v in base_nll.items()}


# ---- 5. a variant: clamp instead of hold (what a committed token feeds its neighbours), judged whole
def part_variants():
    from textflow.evaluation.evaluate import Evaluator
    from textflow.evaluation.judge import JudgeLM
    ev = Evaluator(judge=JudgeLM(cache_dir=os.path.expanduser("~/.cache/textflow")), n_boot=1000, seed=0)
    rows = []
    for k, r, th, g in [(4, "confidence", 0.5, 0.0), (4, "confidence", 0.7, 0.0), (4, "schedule", 0.0, 0.0),
                        (4, "schedule", 0.0, 1.5), (8, "schedule", 0.0, 0.0)]:
        out, rec = commit_run(k, r, th, g, feed="clamp")
        seqs = out.tokens.tolist()
        m = ev(seqs, tok.decode_batch(seqs), eos=tok.eos_token)
        cs = out.committed_step
        rows.append({"feed": "clamp", "K": k, "rule": r, "threshold": th, "gamma": g,
                     "gen_ppl": m["gen_ppl"], "gen_ppl_ci95": m["gen_ppl_ci95"],
                     "unigram_entropy": m["unigram_entropy"], "cci": float(((cs >= 0) & (cs < k - 1)).float().mean()),
                     **{kk: v for kk, v in summarize(k, r, th, g, out, rec).items() if kk in (
                         "changed_vs_base", "early_agree_with_base_final", "commit_frac_per_step")}})
        print("variant", rows[-1], flush=True)
    RES["variants"] = rows


# ---- 6. how sharp can the readout be? top-1 probability of every token's own clean latent
@torch.no_grad()
def part_cap():
    ids = torch.arange(tok.vocab_size)
    top1 = top2_probs(den.readout(den.embed(ids)[None]))[0][0, :, 0]
    held = top2_probs(den.readout(den.embed(heldout_ids)))[0][..., 0]
    RES["readout_cap"] = {"vocab_clean_top1_mean": float(top1.mean()), "vocab_clean_frac_ge_0.99": float((top1 >= 0.99).float().mean()),
                          "vocab_clean_frac_ge_0.9": float((top1 >= 0.9).float().mean()),
                          "heldout_clean_top1_mean": float(held.mean()), "heldout_clean_frac_ge_0.99": float((held >= 0.99).float().mean())}
    print(RES["readout_cap"])


def part_variants2():
    from textflow.evaluation.evaluate import Evaluator
    from textflow.evaluation.judge import JudgeLM
    ev = Evaluator(judge=JudgeLM(cache_dir=os.path.expanduser("~/.cache/textflow")), n_boot=1000, seed=0)
    rows = []
    for pick, start in (("argmax", 1), ("sample", 1), ("sample", 0)):
        k, r, th, g = 4, "schedule", 0.0, 0.0
        out, rec = commit_run(k, r, th, g, feed="hold", pick=pick, start=start)
        seqs = out.tokens.tolist()
        m = ev(seqs, tok.decode_batch(seqs), eos=tok.eos_token)
        cs = out.committed_step
        early = (cs >= 0) & (cs < k - 1)
        rows.append({"feed": "hold", "pick": pick, "start": start, "K": k, "rule": r, "gamma": g,
                     "gen_ppl": m["gen_ppl"], "gen_ppl_ci95": m["gen_ppl_ci95"], "unigram_entropy": m["unigram_entropy"],
                     "cci": float(early.float().mean()), "early_commit_freq": freq_stats(out.tokens[early]),
                     "final_freq": freq_stats(out.tokens),
                     **{kk: v for kk, v in summarize(k, r, th, g, out, rec).items() if kk in (
                         "changed_vs_base", "early_agree_with_base_final", "commit_frac_per_step")}})
        print("variant2", rows[-1], flush=True)
    RES["variants2"] = rows


PARTS = {"readout": part_readout, "commit": part_commit, "oracle": part_oracle, "judge": part_judge,
         "variants": part_variants, "cap": part_cap,
         "variants2": part_variants2}
path = os.path.join(OUT, "instrument.json" if PART == "all" else f"instrument_{PART}.json")
for name, fn in PARTS.items():
    if PART in ("all", name):
        fn()
        with open(path, "w") as f:  # after every part
            json.dump(RES, f, indent=1)
        print(f"[instrument] {name} done, wrote {path}", flush=True)
PY
  PYTHONPATH="$PWD" python "$OUT/instrument.py" "$CKPT" "$OUT" all
fi

# 2b. check: the instrumentation draws exactly sample.py's tokens (needs parts 1 and the instrument.py of part 2)
if [[ $PART == all || $PART == check ]]; then
  PYTHONPATH="$PWD" python - "$CKPT" "$OUT" <<'PY'
import glob, json, sys
import torch
ckpt, out = sys.argv[1], sys.argv[2]
sys.argv = ["instrument.py", ckpt, out, "none"]  # load the helpers only, run no part
exec(open(f"{out}/instrument.py").read())
def ids(pattern):
    path = glob.glob(f"{out}/{pattern}")[0] + "/samples.jsonl"
    return torch.tensor([json.loads(line)["token_ids"] for line in open(path)])
print("ode K4 identical:", bool((trajectory(4)[1] == ids("sweep_ode/0_*")).all()))
print("commit schedule gamma1.5 K4 identical:", bool((commit_run(4, "schedule", 0.0, 1.5)[0].tokens == ids("sweep_schedule/2_*")).all()))
PY
fi

# 3. the table rows (printed) and the figures in docs/figures/commit_study/
if [[ $PART == all || $PART == figures ]]; then
  cat > "$OUT/figures.py" <<'PY'
"""Issue #16: the table rows and the two figures of docs/samplers.md's commit section.
python figures.py OUT FIGDIR  (reads OUT/sweep_*/report.csv and OUT/instrument.json)"""
import csv
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OUT, FIG = sys.argv[1], sys.argv[2]
os.makedirs(FIG, exist_ok=True)
rows = []
for path in sorted(glob.glob(os.path.join(OUT, "sweep_*", "report.csv"))):
    with open(path) as f:
        rows += [r for r in csv.DictReader(f) if r.get("sampler") in ("ode", "sde", "commit")]


def key(r):
    order = {"ode": 0, "sde": 1, "commit": 2}[r["sampler"]]
    rule = {"confidence": 0, "margin": 1, "schedule": 2}.get(r.get("rule", ""), -1)
    return (int(r["steps"]), order, float(r.get("gamma") or 0), rule, float(r.get("threshold") or 0))


print("| sampler | rule | threshold | γ | K | NFE | gen-PPL [95 % CI] | entropy | diag/cci |")
print("|---|---|---|---|---|---|---|---|---|")
for r in sorted(rows, key=key):
    ci = r["gen_ppl_ci95"].strip("[]").split(",")
    rule = r.get("rule") or ""
    th = "" if rule in ("", "schedule") else r.get("threshold")
    g = r.get("gamma") or ("0" if r["sampler"] == "ode" else "")
    print(f"| `{r['sampler']}` | {rule} | {th} | {g} | {r['steps']} | {r['nfe']} | {float(r['gen_ppl']):,.0f} "
          f"[{float(ci[0]):,.0f}, {float(ci[1]):,.0f}] | {float(r['unigram_entropy']):.2f} | {float(r['diag/cci']):.3f} |")

# figure 1: gen-PPL against diag/cci, one panel per K
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
marks = {"confidence": "o", "margin": "s", "schedule": "^"}
for ax, k in zip(axes, (4, 8)):
    for r in rows:
        if int(r["steps"]) != k:
            continue
        g = float(r.get("gamma") or 0)
        color = "tab:blue" if g == 0 else "tab:red"
        if r["sampler"] == "commit":
            ax.scatter(float(r["diag/cci"]), float(r["gen_ppl"]), marker=marks[r["rule"]], color=color, alpha=0.8)
        else:
            ax.axhline(float(r["gen_ppl"]), color=color, ls="--", lw=1)
            ax.text(0.02, float(r["gen_ppl"]) * 1.03, f"{r['sampler']} (γ={g:g})" if r["sampler"] == "sde" else "ode",
                    color=color, fontsize=8)
    ax.set_title(f"K = {k}")
    ax.set_xlabel("diag/cci (fraction committed before the last step)")
    ax.set_yscale("log")
    ax.set_xlim(-0.03, 0.95)
axes[0].set_ylabel("gen-PPL (SmolLM2-135M judge)")
for name, m in marks.items():
    axes[1].scatter([], [], marker=m, color="gray", label=f"commit, rule={name}")
axes[1].scatter([], [], color="tab:blue", label="γ = 0 (ode base)")
axes[1].scatter([], [], color="tab:red", label="γ = 1.5 (sde base)")
axes[1].legend(fontsize=7, loc="center right")
fig.suptitle("commit sampler, quickstart model, 64 samples: gen-PPL against commitment before the last step")
fig.tight_layout()
fig.savefig(os.path.join(FIG, "gen_ppl_vs_cci.png"), dpi=110)

# figure 2: per-step readout confidence of the ODE's x_hat and commit fraction per step (K = 4, gamma 0)
inst = json.load(open(os.path.join(OUT, "instrument.json")))
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
steps = inst["ode_readout"]["K4"]["steps"]
ts = [s["t"] for s in steps]
for th in ("0.3", "0.5", "0.7", "0.9", "0.99"):
    axes[0].plot(ts, [s["frac_conf_ge"][th] for s in steps], marker="o", label=f"top-1 ≥ {th}")
axes[0].plot(ts, [s["agree_final"] for s in steps], "k--", marker="x", label="argmax = final token")
axes[0].set_xlabel("t of the network call (0 = noise)")
axes[0].set_ylabel("fraction of positions")
axes[0].set_title("ode K = 4: readout of x̂ at each step")
axes[0].legend(fontsize=7)
for r in inst["commit_runs"]:
    if r["K"] == 4 and r["gamma"] == 0 and r["rule"] in ("confidence", "schedule"):
        lab = f"confidence ≥ {r['threshold']}" if r["rule"] == "confidence" else "schedule"
        axes[1].plot(ts, r["commit_frac_per_step"], marker="o", label=lab)
axes[1].set_xlabel("t of the network call (0 = noise)")
axes[1].set_ylabel("fraction newly committed")
axes[1].set_title("commit K = 4, γ = 0: commits per step")
axes[1].legend(fontsize=7)
fig.tight_layout()
fig.savefig(os.path.join(FIG, "commit_per_step_K4.png"), dpi=110)
print("wrote", FIG)
PY
  python "$OUT/figures.py" "$OUT" docs/figures/commit_study
fi
