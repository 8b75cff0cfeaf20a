"""``jaxbp demo gpt``: a character-level GPT trained with the hand-written backward passes.

The text needs no download: it is the Python standard library's own source, found
through ``sysconfig`` on every machine with Python (``--data FILE.txt`` trains on your
own text instead). Whole files go to the held-out split (one in ten, chosen by a hash
of the file's path), so the model is scored on code it has never seen. The run:

* trains the GPT (token and position embeddings, transformer blocks, layer norm, dense
  head; :func:`jaxbp.models.gpt`) with the layers' own backward passes, printing
  progress every few seconds;
* trains the same model from the same weights on the same minibatches with
  ``jax.grad`` (skip with ``--no-autodiff``): the two loss curves overlap;
* reports held-out bits per character beside a unigram and a bigram model counted on
  the same training text and scored on the same held-out characters;
* prints a few samples and writes the curves to a PNG (``--json FILE`` writes the
  numbers).

``--model lstm`` trains an LSTM language model (:func:`jaxbp.models.lstm_language_model`,
backpropagation through time by hand) on the same task instead.

``--impl DIR`` is the exercise set's final project: the model, its loss gradient and its
Adam are built from the learner's exercise functions in ``DIR``
(:func:`jaxbp.grading.plug.learner_layers`); every exercise the model needs and ``DIR``
has not finished is named first, in one message.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import sysconfig
import time
import zlib

import numpy as np

MODELS = ("gpt", "lstm")
# The defaults were measured to finish (both runs, evaluation and samples included)
# within 3 minutes on 2 CPU cores; see the README.
DEFAULTS = {
    "gpt": {"steps": 600, "lr": 1e-2},
    "lstm": {"steps": 400, "lr": 1e-2},
}
CONTEXT = 64
ROUND_STEPS = 100           # steps per compiled call; progress is printed after each
TRAIN_CHARS = 3_000_000     # characters of training text read (the rest is not needed)
HELD_OUT_CHARS = 300_000
MAX_VOCAB = 128             # the most frequent characters; the rest share one id
UNKNOWN = "\ufffd"          # how the shared id prints
HELD_OUT_EVERY = 10         # one file in ten is held out
# Directories of the standard library left out: installed packages, the test suites
# (more than half of the library's source) and the codecs' generated mapping tables
# (encodings/): the demo learns code that people wrote.
SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__", "test", "tests",
             "idle_test", "encodings"}
PROGRESS_WINDOWS = 128      # held-out windows scored after each round (the final score
FINAL_WINDOWS = 2048        # uses up to FINAL_WINDOWS)
SAMPLE_CHARS = 240


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options only ``jaxbp demo gpt`` reads (the shared ones are in demo.py)."""
    parser.add_argument("--model", default=None, choices=MODELS,
                        help="gpt: the demo's character-level GPT (default); lstm: an "
                             "LSTM language model on the same task")
    parser.add_argument("--steps", type=int, default=None,
                        help="gpt demo: training steps (default "
                             + ", ".join(f"{k} {v['steps']}" for k, v in DEFAULTS.items())
                             + ")")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="gpt demo: write val_bpc, unigram_bpc, bigram_bpc, seconds "
                             "and samples as JSON")


class TextData:
    """Encoded text, its vocabulary and its split."""

    def __init__(self, name, train_text, held_out_text, n_files=None):
        if not train_text or not held_out_text:
            raise ValueError("the text is empty")
        counts = collections.Counter(train_text)
        chars = [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        self.chars = chars[:MAX_VOCAB - 1] + [UNKNOWN]
        self.unknown_id = len(self.chars) - 1
        self.name = name
        self.n_files = n_files
        self.train = self.encode(train_text)
        self.held_out = self.encode(held_out_text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = np.full(max(int(codes.max(initial=0)), max(map(ord, self.chars))) + 1,
                        self.unknown_id, np.int32)
        for i, c in enumerate(self.chars[:-1]):
            table[ord(c)] = i
        return table[codes]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def stdlib_text(train_chars=TRAIN_CHARS, held_out_chars=HELD_OUT_CHARS) -> TextData:
    """The standard library's ``.py`` files, one in ten held out (by a hash of the path).

    Files are read in the order of that hash (a fixed shuffle, the same on every
    machine) until each split has its budget of characters.
    """
    root = sysconfig.get_paths()["stdlib"]
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        files += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    if not files:
        raise ValueError(f"no .py files found in the standard library at {root}")
    rel = {f: os.path.relpath(f, root).replace(os.sep, "/") for f in files}
    files.sort(key=lambda f: (zlib.crc32(rel[f].encode()), rel[f]))
    parts = {True: [], False: []}
    sizes = {True: 0, False: 0}
    budget = {True: held_out_chars, False: train_chars}
    used = 0
    for f in files:
        held = zlib.crc32(rel[f].encode()) % HELD_OUT_EVERY == 0
        if sizes[held] >= budget[held]:
            if all(sizes[k] >= budget[k] for k in budget):
                break
            continue
        try:
            with open(f, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        parts[held].append(text)
        sizes[held] += len(text)
        used += 1
    return TextData(f"the Python standard library's source ({root})",
                    "\n".join(parts[False])[:train_chars],
                    "\n".join(parts[True])[:held_out_chars], n_files=used)


def file_text(path, context=CONTEXT) -> TextData:
    """A text file of one's own: the last tenth is held out."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError as e:
        raise ValueError(f"cannot read {path!r}: {e.strerror or e}") from e
    need = 20 * (context + 1)
    if len(text) < need:
        raise ValueError(f"{path!r} holds {len(text)} characters; the demo needs at "
                         f"least {need} (context {context})")
    cut = len(text) - len(text) // 10
    return TextData(f"{os.path.basename(path)}", text[:cut], text[cut:])


def windows(ids: np.ndarray, context: int, stride: int, limit: int | None = None):
    """Inputs ``ids[i:i+context]`` and targets ``ids[i+1:i+context+1]`` for every
    ``i`` that is a multiple of ``stride``: ``(n, context)`` int32 each."""
    starts = np.arange(0, len(ids) - context, stride)
    if limit is not None:
        starts = starts[:limit]
    idx = starts[:, None] + np.arange(context + 1)[None, :]
    w = ids[idx]
    return np.ascontiguousarray(w[:, :-1]), np.ascontiguousarray(w[:, 1:])


def baselines(data: TextData, x_val, y_val) -> dict:
    """Unigram and bigram bits per character (add-one smoothing, counted on the
    training text) on exactly the held-out (previous, next) pairs the model is scored
    on."""
    v = data.vocab_size
    uni = np.bincount(data.train, minlength=v).astype(np.float64) + 1.0
    uni /= uni.sum()
    pairs = np.bincount(data.train[:-1] * v + data.train[1:], minlength=v * v)
    big = pairs.reshape(v, v).astype(np.float64) + 1.0
    big /= big.sum(axis=1, keepdims=True)
    prev, nxt = x_val.reshape(-1), y_val.reshape(-1)
    return {"unigram_bpc": float(-np.mean(np.log2(uni[nxt]))),
            "bigram_bpc": float(-np.mean(np.log2(big[prev, nxt])))}


def build_model(kind: str, vocab_size: int, context: int, layers=None):
    """The demo's model; ``layers``: constructors in place of jaxbp's (``--impl``: the
    learner's, from :func:`jaxbp.grading.plug.learner_layers`)."""
    from jaxbp import models

    if kind == "gpt":
        return models.gpt(vocab_size, context=context, features=96, blocks=2, heads=4,
                          layers=layers)
    return models.lstm_language_model(vocab_size, features=256, embed=64, layers=layers)


def _bpc_fn(net, loss):
    import jax

    @jax.jit
    def nats(params, x, y):
        return loss.forward(net.forward(params, x)[0], y)[0]

    def bpc(params, x, y, batch=128):
        total = 0.0
        for i in range(0, len(x), batch):
            total += float(nats(params, x[i:i + batch], y[i:i + batch])) * \
                len(x[i:i + batch])
        return total / len(x) / math.log(2)

    return bpc


def _sampler(net, context: int):
    """``sample(params, prompts, key, n, temperature) -> ids (k, len + n)``, one compiled
    loop: each new character is drawn from the logits at the last filled position of a
    window of the last ``context`` characters (positions after it are padding, which a
    causal model never looks at)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def sample(params, prompts, key, n, temperature):
        k, p = prompts.shape
        buf = jnp.concatenate([prompts, jnp.zeros((k, n), prompts.dtype)], axis=1)

        def body(i, carry):
            buf, key = carry
            filled = p + i
            start = jnp.maximum(filled - context, 0)
            window = lax.dynamic_slice(buf, (0, start), (k, context))
            logits, _ = net.forward(params, window)
            last = lax.dynamic_index_in_dim(logits, filled - 1 - start, axis=1,
                                            keepdims=False)
            key, sub = jax.random.split(key)
            nxt = jax.random.categorical(sub, last / temperature, axis=-1)
            buf = lax.dynamic_update_slice(buf, nxt.astype(buf.dtype)[:, None],
                                           (0, filled))
            return buf, key

        buf, _ = lax.fori_loop(0, n, body, (buf, key))
        return buf

    return jax.jit(sample, static_argnums=(3,))


def fail(message):
    """Stops the demo with a one-line error (exit status 2), as the other demos do."""
    from jaxbp.demo import DemoError

    raise DemoError(message)


def run(args) -> int:
    """Runs ``jaxbp demo gpt`` with the parsed command-line ``args``."""
    import jax
    import jax.numpy as jnp
    import optax

    import jaxbp
    from jaxbp import models, train

    start = time.perf_counter()
    kind = args.model or "gpt"
    if args.epochs is not None:
        fail("the gpt demo counts training steps: use --steps instead of --epochs")
    steps = args.steps if args.steps is not None else DEFAULTS[kind]["steps"]
    if steps < 1:
        fail(f"--steps must be a positive int, got {steps}")
    if args.batch_size < 1:
        fail(f"--batch-size must be a positive int, got {args.batch_size}")
    batch = args.batch_size
    lr = DEFAULTS[kind]["lr"] if args.lr is None else args.lr
    context = CONTEXT
    if args.impl:
        # The learner's backward passes, loss gradient and Adam, all of them: every
        # unfinished exercise the model needs is named first, in one message.
        from jaxbp.demo import build_with, layer_constructors

        ctors = layer_constructors(args.impl, kind)

    try:
        data = file_text(args.data, context) if args.data else stdlib_text()
    except ValueError as e:
        fail(f"--data: {e}" if args.data else str(e))
    x_train, y_train = windows(data.train, context, context // 2)
    x_val, y_val = windows(data.held_out, context, context, FINAL_WINDOWS)
    if len(x_train) < batch or len(x_val) < 1:
        fail(f"the text is too short for batches of {batch} windows of {context} "
             f"characters: {len(x_train)} training windows, {len(x_val)} held out")
    base = baselines(data, x_val, y_val)
    if args.impl:
        net, loss, adam = build_with(args.impl, lambda: (
            build_model(kind, data.vocab_size, context, ctors),
            ctors["softmax_cross_entropy"](), ctors["adam"]))
    else:
        net = build_model(kind, data.vocab_size, context)
        loss, adam = jaxbp.softmax_cross_entropy(), optax.adam
    init_key, shuffle_key, sample_key = jax.random.split(jax.random.key(args.seed), 3)
    params, _ = net.init(init_key, (context,))
    warmup = min(100, max(steps // 10, 1))
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(steps, warmup + 1))
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), adam(schedule))

    files = f", {data.n_files} files" if data.n_files else ""
    print(f"jaxbp demo gpt: {'a character-level GPT' if kind == 'gpt' else 'an LSTM'} "
          f"on {data.name}")
    print(f"  text: {len(data.train):,} training and {len(data.held_out):,} held-out "
          f"characters{files} (held-out split by file), {data.vocab_size} symbols")
    print(f"  model: {net.name[:150]}{'...' if len(net.name) > 150 else ''}")
    print(f"  {models.count_params(params):,} parameters; Adam lr {lr:g} (warm-up, cosine "
          f"decay), batch {batch} x {context} characters, {steps} steps, "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s)"
          + (f", layers, loss gradient and Adam from --impl {args.impl}" if args.impl
             else ""))
    print(f"  baselines on the held-out characters: unigram {base['unigram_bpc']:.3f} "
          f"bits/char, bigram {base['bigram_bpc']:.3f} bits/char")

    bpc = _bpc_fn(net, loss)
    # Progress is scored on windows spread over the whole held-out text (its first
    # windows alone would be one or two files).
    spread = np.linspace(0, len(x_val) - 1, min(PROGRESS_WINDOWS, len(x_val))).astype(int)
    progress_x, progress_y = x_val[spread], y_val[spread]
    rounds = [ROUND_STEPS] * (steps // ROUND_STEPS) + (
        [steps % ROUND_STEPS] if steps % ROUND_STEPS else [])
    xd, yd = jax.device_put(x_train), jax.device_put(y_train)
    runs = ["manual"] + ([] if args.no_autodiff else ["autodiff"])
    results = {}
    for grads in runs:
        label = "hand-written backward" if grads == "manual" else "jax.grad (autodiff)"
        t0 = time.perf_counter()
        p = jax.tree.map(jnp.array, params)
        s = optimizer.init(p)
        key = shuffle_key
        if args.per_step:
            step_fn = train.make_step(net, loss, optimizer, grads)
        else:
            epochs = {n: train.make_epoch(net, loss, optimizer, grads, batch_size=batch,
                                          steps=n) for n in set(rounds)}
        losses, curve = [], []
        done = 0
        for n in rounds:
            key, sub = jax.random.split(key)
            try:
                if args.per_step:  # the same minibatches make_epoch would draw
                    chunk = []
                    for idx in np.asarray(train.minibatch_indices(sub, len(x_train), batch,
                                                                  n)):
                        p, s, value = step_fn(p, s, x_train[idx], y_train[idx])
                        chunk.append(value)
                    chunk = np.asarray(jnp.stack(chunk))
                else:
                    p, s, chunk = epochs[n](p, s, sub, xd, yd)
                    chunk = np.asarray(chunk)
            except Exception as e:
                if not args.impl:
                    raise
                fail(f"training with --impl {args.impl} failed: {type(e).__name__}: {e}")
            done += n
            losses.append(chunk / math.log(2))
            held = bpc(p, progress_x, progress_y)
            curve.append((done, held))
            print(f"  {label}: step {done:5d}/{steps}  train "
                  f"{np.mean(chunk) / math.log(2):.3f}  held-out {held:.3f} bits/char  "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        seconds = time.perf_counter() - t0
        results[label] = {"params": p, "losses": np.concatenate(losses), "curve": curve,
                          "seconds": seconds, "grads": grads}
        if not np.all(np.isfinite(results[label]["losses"])):
            fail(f"training with the {label} diverged (loss not finite); try a smaller "
                 f"--lr than {lr:g}")

    labels = list(results)
    manual = results[labels[0]]
    val_bpc = bpc(manual["params"], x_val, y_val)
    print(f"  {labels[0]}: {steps} steps in {manual['seconds']:.1f} s (compilation "
          f"included)")
    extra = {}
    if len(labels) == 2:
        other = results[labels[1]]
        a, b = manual["losses"], other["losses"]
        gap = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
        extra["autodiff_val_bpc"] = bpc(other["params"], x_val, y_val)
        print(f"  {labels[1]}: {steps} steps in {other['seconds']:.1f} s; training losses "
              f"differ from the hand-written run's by {gap[0]:.1e} (relative) at the "
              f"first step, {np.median(gap):.1e} median, {gap.max():.1e} at most (float32 "
              f"rounding, compounded step after step); its held-out "
              f"{extra['autodiff_val_bpc']:.3f} bits/char")

    if args.data:  # three snippets of the held-out text
        prompt_ids = np.stack([data.held_out[i:i + 8] for i in
                               np.linspace(0, len(data.held_out) - 9, 3).astype(int)])
    else:  # three openings of a method's body, 8 characters each
        prompt_ids = np.stack([data.encode(t)
                               for t in ("    def ", "    for ", "    try:")])
    sample = _sampler(net, context)
    ids = np.asarray(sample(manual["params"], jnp.asarray(prompt_ids), sample_key,
                            SAMPLE_CHARS, 0.8))
    samples = [data.decode(row) for row in ids]

    verdict = "below" if val_bpc < base["bigram_bpc"] else "NOT below"
    print(f"held-out bits per character with the hand-written backward: {val_bpc:.3f} "
          f"({verdict} the bigram's {base['bigram_bpc']:.3f}; unigram "
          f"{base['unigram_bpc']:.3f}) on {y_val.size:,} characters")
    print("samples (temperature 0.8, after a prompt):")
    for text in samples:
        print("  ---")
        print("\n".join("  " + line for line in text.splitlines()))
    if args.save:
        train.save(args.save, manual["params"])
        print(f"  parameters saved to {args.save}")
    if not args.no_plots:
        from jaxbp import plots

        path = plots.language_model_curves(
            {k: {"losses": r["losses"], "curve": r["curve"]} for k, r in results.items()},
            {"unigram": base["unigram_bpc"], "bigram": base["bigram_bpc"]},
            os.path.join(args.out, f"{kind}_curves.png"),
            title=f"{'GPT' if kind == 'gpt' else 'LSTM'}, character level: hand-written "
                  f"backward and jax.grad")
        print(f"plots: {path}")
    seconds = time.perf_counter() - start
    if args.json:
        out = {"val_bpc": val_bpc, **base, "seconds": seconds, "samples": samples,
               "model": kind, "steps": steps, **extra}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
        print(f"results written to {args.json}")
    print(f"done in {seconds:.1f} s")
    return 0
