"""Scanning benchmark: detection rates, latency, and model-tier throughput vs llm-guard.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/scanning/bench_scanning.py [--quick]

1. Signature, secrets and invisible-text detectors on the labelled corpus
   (``corpus.py``): detection rate per attack source, false-positive rate per benign
   source, latency per KB and per 4 KB document.
2. The model tier. The real ``protectai/deberta-v3-base-prompt-injection-v2``
   weights cannot be downloaded here, so a DeBERTa-v2 of the same architecture and
   size (``DebertaV2Config()`` defaults = deberta-v3-base, 184M parameters) with
   random weights is built locally: **its speed is real, its scores are noise**.
   Detection quality of the model tier needs the real weights: set
   ``LCS_PI_MODEL_DIR`` to a local copy to add its TPR/FPR to the table.
   Throughput is measured side by side, in one run, on the same texts, against
   llm-guard 0.3.16's default ``PromptInjection`` scanner built from the same
   random model through llm-guard's ``Model`` with a local path.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))

import corpus as corpus_mod

from langchain_secure.scanning import (
    InvisibleTextDetector,
    PromptInjectionDetector,
    SecretsDetector,
    SignatureDetector,
    export_onnx,
)
from langchain_secure.scanning.testing import build_classifier

THRESHOLD = 0.5


def rates(detector: Any, samples: list[corpus_mod.Sample], threshold: float) -> dict[str, Any]:
    by_source: dict[str, list[bool]] = defaultdict(list)
    start = time.perf_counter()
    verdicts = [detector.scan(s.text) for s in samples]
    elapsed = time.perf_counter() - start
    misses = []
    for sample, verdict in zip(samples, verdicts, strict=True):
        flagged = verdict.flagged(threshold)
        by_source[sample.source].append(flagged)
        if sample.label == 1 and not flagged:
            misses.append(sample)
        if sample.label == 0 and flagged:
            misses.append(sample)
    kb = sum(len(s.text.encode()) for s in samples) / 1024
    attacks = [f for s, f in zip(samples, verdicts, strict=True) if s.label == 1]
    benign = [f for s, f in zip(samples, verdicts, strict=True) if s.label == 0]
    return {
        "by_source": {k: (sum(v), len(v)) for k, v in sorted(by_source.items())},
        "tpr": sum(v.flagged(threshold) for v in attacks) / max(1, len(attacks)),
        "fpr": sum(v.flagged(threshold) for v in benign) / max(1, len(benign)),
        "ms_per_kb": elapsed * 1000 / kb,
        "errors": misses,
    }


def latency_4kb(detector: Any, docs: list[str], repeat: int = 5) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        for doc in docs:
            start = time.perf_counter()
            detector.scan(doc)
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def print_rates(name: str, result: dict[str, Any]) -> None:
    print(f"\n### {name}: threshold {THRESHOLD}")
    print(f"{'source':34s} {'label':>6s} {'flagged':>9s} {'rate':>7s}")
    for source, (hit, total) in result["by_source"].items():
        label = (
            "benign"
            if source.endswith(".clean") or source.startswith(("pypi", "stdlib"))
            else "attack"
        )
        print(f"{source:34s} {label:>6s} {hit:>4d}/{total:<4d} {hit / total:7.1%}")
    print(
        f"TPR (all attacks) {result['tpr']:.1%}   FPR (all benign) {result['fpr']:.2%}   "
        f"{result['ms_per_kb']:.3f} ms/KB"
    )


# ---------------------------------------------------------------- model tier


def llm_guard_scanner(model_dir: Path) -> Any:
    from llm_guard.input_scanners import PromptInjection
    from llm_guard.input_scanners.prompt_injection import V2_MODEL, MatchType
    from llm_guard.model import Model
    from llm_guard.util import configure_logger

    configure_logger(log_level="WARNING")  # it logs every scan at DEBUG otherwise

    # V2_MODEL's settings, pointed at the local same-size model.
    model = Model(
        path=str(model_dir),
        pipeline_kwargs=dict(V2_MODEL.pipeline_kwargs),
    )
    model.pipeline_kwargs.pop("device", None)
    model.pipeline_kwargs["device"] = V2_MODEL.pipeline_kwargs["device"]
    return PromptInjection(model=model, threshold=0.92, match_type=MatchType.FULL)


def throughput(name: str, fn: Any, texts: list[str], repeat: int) -> float:
    fn(texts[:4])  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - start)
    print(f"  {name:44s} {best:8.2f} s  {len(texts) / best:8.2f} texts/s")
    return best


def model_tier(samples: list[corpus_mod.Sample], quick: bool) -> None:
    import torch

    print("\n## Model tier (random-weight deberta-v3-base-sized model: speed only)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rng = random.Random(7)
    short = [s.text for s in samples if len(s.text) <= 2000]
    texts = rng.sample(short, 12 if quick else 64)
    with tempfile.TemporaryDirectory() as folder:
        kept = os.environ.get("LCS_BENCH_MODEL_DIR")  # reuse a model built by an earlier run
        model_dir = Path(kept) if kept else Path(folder) / "base"
        if not (model_dir / "model.int8.onnx").is_file():
            start = time.perf_counter()
            tokenizer_corpus = [s.text for s in samples]
            build_classifier(model_dir, size="base", corpus=tokenizer_corpus, vocab_size=16000)
            print(f"built base-size model in {time.perf_counter() - start:.1f} s")
            start = time.perf_counter()
            export_onnx(model_dir, quantize=True)
            print(f"exported ONNX + int8 in {time.perf_counter() - start:.1f} s")

        common = dict(model_path=model_dir, cache_size=0, batch_size=8)
        ours_torch = PromptInjectionDetector(**common)
        ours_onnx = PromptInjectionDetector(backend="onnx", **common)
        ours_int8 = PromptInjectionDetector(backend="onnx", quantize=True, **common)
        for det in (ours_torch, ours_onnx, ours_int8):
            det.load()
        tok = ours_torch._runtime.tokenizer  # type: ignore[union-attr]
        n_tokens = [len(tok(t)["input_ids"]) for t in texts]
        print(
            f"{len(texts)} texts, {sum(n_tokens)} tokens (mean {statistics.mean(n_tokens):.0f}, "
            f"max {max(n_tokens)}; none over 512, so llm-guard's truncation does not apply)"
            if max(n_tokens) <= 512
            else f"{len(texts)} texts, {sum(n_tokens)} tokens, max {max(n_tokens)}"
        )
        start = time.perf_counter()
        guard = llm_guard_scanner(model_dir)
        print(f"llm-guard import + PromptInjection init {time.perf_counter() - start:.1f} s")

        repeat = 1 if quick else 2
        print("\nthroughput, same texts, same process (best of runs):")
        base = throughput(
            "llm-guard PromptInjection (default, batch 1)",
            lambda ts: [guard.scan(t) for t in ts],
            texts,
            repeat,
        )
        results = {
            "ours torch fp32 (batch 8)": throughput(
                "ours torch fp32 (batch 8)", ours_torch.scan_batch, texts, repeat
            ),
            "ours onnx fp32 (batch 8)": throughput(
                "ours onnx fp32 (batch 8)", ours_onnx.scan_batch, texts, repeat
            ),
            "ours onnx int8 (batch 8)": throughput(
                "ours onnx int8 (batch 8)", ours_int8.scan_batch, texts, repeat
            ),
            "ours torch fp32, one text at a time": throughput(
                "ours torch fp32, one text at a time",
                lambda ts: [ours_torch.scan(t) for t in ts],
                texts,
                repeat,
            ),
        }
        print("\nspeed-up over llm-guard's default:")
        for name, seconds in results.items():
            print(f"  {name:44s} {base / seconds:6.2f}x")

        # agreement of the backends on the same random model
        ref = [v.risk for v in ours_torch.scan_batch(texts)]
        for name, det in (("onnx fp32", ours_onnx), ("onnx int8", ours_int8)):
            got = [v.risk for v in det.scan_batch(texts)]
            diff = max(abs(a - b) for a, b in zip(ref, got, strict=True))
            print(f"  max |risk - torch risk| {name}: {diff:.4f}")

        # one 512-token chunk
        print("\nlatency per 512-token chunk (a batch of full chunks, per chunk):")
        long_text = " ".join(s.text for s in samples if s.source == "pypi.readme")[:60000]
        for name, det in (
            ("torch fp32", ours_torch),
            ("onnx fp32", ours_onnx),
            ("onnx int8", ours_int8),
        ):
            runtime = det._runtime
            chunks = det._chunks(runtime, [long_text])[: 2 if quick else 8]  # type: ignore[arg-type]
            assert all(len(c.ids) == 512 for c in chunks)
            runtime.run([chunks[0].ids])  # type: ignore[union-attr]
            start = time.perf_counter()
            runtime.run([c.ids for c in chunks])  # type: ignore[union-attr]
            per = (time.perf_counter() - start) / len(chunks) * 1000
            print(f"  {name:12s} {per:8.1f} ms/chunk   {per / 512 * 1000:6.1f} us/token")
        # what llm-guard does with a long document
        doc = long_text[:20000]
        n = len(tok(doc)["input_ids"])
        chunks = len(ours_torch._chunks(ours_torch._runtime, [doc]))  # type: ignore[arg-type]
        print(
            f"\na {len(doc)}-character document ({n} tokens): llm-guard reads the first 512 "
            f"tokens (truncation=True); ours reads all of it in {chunks} overlapping chunks"
        )

    real = os.environ.get("LCS_PI_MODEL_DIR")
    if real:
        det = PromptInjectionDetector(model_path=real, cache_size=0)
        print_rates(f"prompt_injection ({real})", rates(det, samples, 0.92))
    else:
        print(
            "\nmodel-tier TPR/FPR: not measured (random weights). Set LCS_PI_MODEL_DIR to a "
            "local copy of protectai/deberta-v3-base-prompt-injection-v2 to measure them."
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer texts and repeats")
    parser.add_argument("--no-model", action="store_true", help="skip the model tier")
    parser.add_argument("--show-errors", type=int, default=8)
    args = parser.parse_args()

    samples = corpus_mod.load()
    attacks = sum(s.label for s in samples)
    print(
        f"# Scanning benchmark: {len(samples)} samples ({attacks} attacks, "
        f"{len(samples) - attacks} benign)"
    )

    sig = SignatureDetector(cache_size=0)
    sig_rates = rates(sig, samples, THRESHOLD)
    print_rates("signatures", sig_rates)
    docs = [s.text for s in samples if s.label == 0 and len(s.text) >= 3900][:50]
    p50, p99 = latency_4kb(sig, docs)
    print(
        f"latency on {len(docs)} ~4 KB benign documents: p50 {p50:.3f} ms, p99 {p99:.3f} ms "
        "(target <= 1 ms)"
    )
    print(f"\nmisclassified examples (first {args.show_errors}):")
    for sample in sig_rates["errors"][: args.show_errors]:
        kind = "missed attack" if sample.label else "false positive"
        snippet = sample.text[:110].replace("\n", " ")
        print(f"  [{kind}] {sample.source}: {snippet!r}")

    for name, detector in (
        ("secrets (any secret found counts as flagged)", SecretsDetector(cache_size=0, risk=0.5)),
        ("invisible_text (llm-guard categories)", InvisibleTextDetector(cache_size=0)),
    ):
        print_rates(name, rates(detector, samples, THRESHOLD))

    if not args.no_model:
        model_tier(samples, args.quick)


if __name__ == "__main__":
    main()
