"""Check, on a CPU, that every Triton kernel specialization genossm launches compiles for sm_90.

Why: CI runs the kernels in the Triton interpreter, which accepts code that Triton's code
generator rejects. A helper returning a scalar in one constexpr branch and a tensor in the other
ran in the interpreter and under triton 3.9, but triton 3.6 (the one torch 2.11's CUDA build
installs) refused to compile it ("Inconsistent return types") and a Mamba model failed to train.

How:
1. Record. Curated calls of the public ops (every option the launchers branch on, both dtypes
   they treat differently, odd and aligned lengths) and of small models run with
   `JITFunction.run` replaced by a recorder: no kernel runs, each launch is kept as its kernel,
   its arguments (a tensor as its dtype and whether it is 16-byte aligned, a scalar or a
   constexpr as its value) and its launch options (num_warps, maxnreg, ...). This runs without
   TRITON_INTERPRET so the launchers choose what they choose on a GPU: two of them branch on it
   (the scan's warp-shuffle reduction, SSD's bf16 matmul operands).
2. Compile. A subprocess, with `--triton-path` first on sys.path when given, rebuilds each launch
   with stand-in tensors and lets that triton's own binder specialize it for
   GPUTarget("cuda", 90, 32), exactly as `JITFunction.run` would on an H100/H200 (ints as i32 or
   i64, divisibility by 16, the value 1 as a constexpr). Distinct specializations compile in
   parallel; each reports its registers, spilled bytes and shared memory.

Fails (exit 1) when a specialization does not compile or needs more shared memory than an sm_90
block may use (232,448 bytes). Progress goes to stderr; `--json` writes every result.

    python scripts/check_kernel_compile.py --jobs 2 --triton-path .ci-cache/triton36
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SM90_MAX_SHARED_BYTES = 232_448  # cudaDevAttrMaxSharedMemoryPerBlockOptin on sm_90
TARGET = ("cuda", 90, 32)  # GPUTarget(backend, arch, warp_size)
REPO = Path(__file__).resolve().parent.parent


class CheckError(Exception):
    """The check could not run (not: a kernel failed to compile)."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# 1. Record
# --------------------------------------------------------------------------------------------


def _encode(value, where: str):
    """A launch argument as JSON: tensors by dtype and alignment, scalars and constexprs as is."""
    import torch
    import triton.language as tl

    if isinstance(value, torch.Tensor):
        return {"tensor": str(value.dtype).removeprefix("torch."), "aligned": value.data_ptr() % 16 == 0}
    if isinstance(value, tl.dtype):
        return {"tl_dtype": value.name}
    if isinstance(value, tl.constexpr):
        return _encode(value.value, where)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckError(f"{where}: cannot record an argument of type {type(value).__name__}; "
                     "teach _encode and _stand_in in scripts/check_kernel_compile.py about it")


class LaunchRecorder:
    """Replaces `JITFunction.run` while active: records each launch, runs nothing."""

    def __init__(self):
        self.case = ""
        self._launches: dict[str, dict] = {}  # JSON of the launch -> the launch and its cases

    @property
    def launches(self) -> list[dict]:
        return list(self._launches.values())

    def __enter__(self):
        from triton.runtime.jit import JITFunction

        recorder = self

        def record(fn, *args, grid, warmup, **kwargs):
            recorder.add(fn, args, kwargs)

        self._original = JITFunction.run
        JITFunction.run = record
        return self

    def __exit__(self, *exc):
        from triton.runtime.jit import JITFunction

        JITFunction.run = self._original

    def add(self, fn, args, kwargs) -> None:
        name = f"{fn.module}.{fn.fn.__qualname__}"
        params = {k: v for k, v in kwargs.items() if k in fn.arg_names}
        options = {k: v for k, v in kwargs.items() if k not in fn.arg_names}
        bound = fn.signature.bind(*args, **params)
        bound.apply_defaults()
        launch = {
            "module": fn.module,
            "kernel": fn.fn.__qualname__,
            "args": {k: _encode(v, f"{name}({k}=...)") for k, v in bound.arguments.items()},
            "options": {k: _encode(v, f"{name} option {k}") for k, v in options.items()},
        }
        seen = self._launches.setdefault(json.dumps(launch, sort_keys=True), {**launch, "cases": []})
        if self.case not in seen["cases"]:
            seen["cases"].append(self.case)


def _op_cases():
    """(label, call) pairs: each call runs one public op, forward and, under "train", backward.

    Chosen so that every constexpr flag of every kernel takes each of its values in bf16 and
    in fp32 (16-bit inputs take other kernels: the scan's sequential backward, SSD's one-tile
    forward), with lengths long enough that the runtime sizes look like a GPU run's (several
    chunks and segments, no size that happens to be 1 and so a constexpr). Odd lengths reach
    the kernels only where the launchers do not pad them (no softplus, or cu_seqlens). Not
    every combination of flags: a sequential-scan specialization takes triton 3.6 ~10 s of a
    core, and the whole check should stay near 3 minutes on CI's 2 cores."""
    import torch

    from genossm.kernels import causal_conv1d, fftconv, gated_rms_norm, selective_scan, ssd
    from genossm.kernels.selective_scan import chunk_scan

    def rand(*shape, dtype=torch.float32, grad=False):
        return torch.randn(*shape, dtype=dtype).requires_grad_(grad)

    def run(out, grad):
        if grad:
            outs = out if isinstance(out, tuple) else (out,)
            torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])

    def packed(L):
        return torch.tensor([0, L // 3, L // 3, L], dtype=torch.int32)  # with an empty sequence

    def scan(dtype, grad, N, L=2048, *, batch=2, H=64, groups=1, B_varies=True, C_varies=True,
             options=True, states=False, varlen=False, params_dtype=torch.float32, config=None):
        def call():
            big = dict(dtype=dtype, grad=grad)
            small = dict(dtype=params_dtype, grad=grad)
            rows = 3 if varlen else batch
            with chunk_scan.scan_config(**(config or {})):
                run(selective_scan(
                    rand(batch, H, L, **big), rand(batch, H, L, **big), rand(H, N, **small),
                    rand(batch, groups, N, L, **big) if B_varies else rand(H, N, **small),
                    rand(batch, groups, N, L, **big) if C_varies else rand(H, N, **small),
                    rand(H, **small) if options else None,
                    rand(batch, H, L, **big) if options else None,
                    rand(H, **small) if options else None, options, states,
                    rand(rows, H, N, grad=grad) if states else None,
                    packed(L) if varlen else None, backend="triton"), grad)
        return call

    def ssd_case(dtype, grad, P=64, N=128, chunk=64, L=1000, *, batch=2, H=4, groups=1,
                 options=True, D_per_P=False, states=False, varlen=False):
        def call():
            big = dict(dtype=dtype, grad=grad)
            rows = 3 if varlen else batch
            D = rand(*((H, P) if D_per_P else (H,)), grad=grad) if options else None
            run(ssd(rand(batch, L, H, P, **big), rand(batch, L, H, **big), rand(H, grad=grad),
                    rand(batch, L, groups, N, **big), rand(batch, L, groups, N, **big), D,
                    rand(batch, L, H, P, **big) if options else None,
                    rand(H, grad=grad) if options else None, options,
                    rand(rows, H, P, N, grad=grad) if states else None, states,
                    packed(L) if varlen else None, chunk_size=chunk, backend="triton"), grad)
        return call

    def fftconv_case(dtype, L, Lk, *, options=True):
        def call():
            gate = lambda: rand(2, 8, L, dtype=dtype, grad=True) if options else None  # noqa: E731
            run(fftconv(rand(2, 8, L, dtype=dtype, grad=True), rand(8, Lk, grad=True),
                        rand(8, grad=True) if options else None, gate(), gate(),
                        backend="triton"), True)
        return call

    def conv_case(dtype, W, *, options=True, L=2000):
        def call():
            run(causal_conv1d(
                rand(2, 64, L, dtype=dtype, grad=True), rand(64, W, dtype=dtype, grad=True),
                rand(64, dtype=dtype, grad=True) if options else None, "silu" if options else None,
                rand(2, 64, W - 1, dtype=dtype, grad=True) if not options else None, True,
                backend="triton"), True)
        return call

    def rms_norm_case(dtype, group_size, *, gate=True, position_major_z=False, T=1001):
        def call():
            z = rand(2, 512, T, dtype=dtype, grad=True).transpose(1, 2) if position_major_z else (
                rand(2, T, 512, dtype=dtype, grad=True))
            run(gated_rms_norm(rand(2, T, 512, dtype=dtype, grad=True), z if gate else None,
                               rand(512, dtype=dtype, grad=True), group_size, 1e-5,
                               backend="triton"), True)
        return call

    # Each flag takes each of its values in some variant; the first is what the models run.
    # cu_seqlens in training only: no inference path packs sequences, and the sequential scan's
    # kernels with it cost triton 3.6 ~40 s of a core
    both, train = ("infer", "train"), ("train",)
    scan_variants = {
        "D z bias softplus": (both, {}),
        "D z bias softplus, cu_seqlens, states in and out, odd L": (train, dict(
            L=2001, batch=1, states=True, varlen=True)),
        "nothing optional, fixed B C, odd L": (both, dict(
            L=2047, options=False, B_varies=False, C_varies=False)),
        "two groups, fixed B, states in and out": (both, dict(
            groups=2, B_varies=False, states=True)),
    }
    ssd_variants = {
        "P=64 N=128 chunk 64, D bias softplus z": {},
        "P=24 N=40 chunk 256, odd L, D per P, two groups": dict(
            P=24, N=40, chunk=256, L=999, groups=2, D_per_P=True),
        "cu_seqlens, states in and out, nothing else optional": dict(
            batch=1, options=False, states=True, varlen=True),
    }
    cases = {}
    for dtype in (torch.bfloat16, torch.float32):
        t = str(dtype).removeprefix("torch.")
        for grad, mode in ((False, "infer"), (True, "train")):
            # N <= 16: the sequential-time kernels; above: the associative scan
            for N in (16, 64):
                for label, (modes, variant) in scan_variants.items():
                    if mode in modes:
                        cases[f"scan {mode} {t} N={N} {label}"] = scan(dtype, grad, N, **variant)
            for label, variant in ssd_variants.items():
                cases[f"ssd {mode} {t} {label}"] = ssd_case(dtype, grad, **variant)
        cases[f"scan train {t} N=5 H=37, every input {t}"] = scan(
            dtype, True, 5, 1000, H=37, params_dtype=dtype, states=True)
    cases["scan infer bfloat16 N=16 length 1 (a decoding step)"] = scan(
        torch.bfloat16, False, 16, 1, batch=3, states=True)
    # the backward other than the default for each dtype (sweeps and tests choose them)
    cases["scan train bfloat16 N=16 bwd_kernel=chunk"] = scan(
        torch.bfloat16, True, 16, config={"bwd_kernel": "chunk"})
    cases["scan train float32 N=16 bwd_kernel=seq!"] = scan(
        torch.float32, True, 16, config={"bwd_kernel": "seq!"})
    cases["ssd train float16"] = ssd_case(torch.float16, True, states=True)

    for dtype in (torch.bfloat16, torch.float16, torch.float32, torch.float64):
        t = str(dtype).removeprefix("torch.")
        cases[f"fftconv {t} D and gates"] = fftconv_case(dtype, 1000, 1000)
        cases[f"fftconv {t} nothing optional, short filter"] = fftconv_case(
            dtype, 1024, 7, options=False)
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        t = str(dtype).removeprefix("torch.")
        for W in (2, 3, 4):
            cases[f"causal_conv1d {t} W={W} bias SiLU"] = conv_case(dtype, W)
        cases[f"causal_conv1d {t} no bias or SiLU, initial state, odd L"] = conv_case(
            dtype, 4, options=False, L=2047)
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        t = str(dtype).removeprefix("torch.")
        cases[f"gated_rms_norm {t} one group, position-major z"] = rms_norm_case(
            dtype, 512, position_major_z=True)
        cases[f"gated_rms_norm {t} groups of 64, no gate, T=1"] = rms_norm_case(
            dtype, 64, gate=False, T=1)
    return cases


def _model_cases():
    """(label, call) pairs: every bundled model config, a training step and an inference
    forward under bf16 autocast (training's bf16-mixed), so the launches see the models' own
    layouts and strides (SSD reads x, B, C as transposed views)."""
    import torch

    from genossm.models.config import load_model_config
    from genossm.models.lm import build_model

    def model_call(name, train):
        def call():
            torch.manual_seed(0)
            model = build_model(load_model_config(name))
            tokens = torch.randint(0, 5, (1, 2048))
            with torch.autocast("cpu", dtype=torch.bfloat16), torch.set_grad_enabled(train):
                logits = model(tokens)
            if train:
                logits.float().sum().backward()
        return call

    names = sorted(p.stem for p in (REPO / "configs" / "models").glob("*.yaml"))
    return {f"model {name} {mode}": model_call(name, mode == "train")
            for name in names for mode in ("train", "infer")}


def record_launches() -> list[dict]:
    """Every distinct launch of the curated cases. Runs no kernel (see the module docstring)."""
    os.environ.pop("TRITON_INTERPRET", None)  # before triton is imported: compiled-code launchers
    os.environ["GENOSSM_KERNELS"] = "triton"  # the models' ops on CPU tensors take the fast path
    recorder = LaunchRecorder()
    cases = {**_op_cases(), **_model_cases()}
    with recorder:
        for label, call in cases.items():
            recorder.case = label
            try:
                call()
            except Exception as error:
                raise CheckError(f"recording case {label!r} failed: {type(error).__name__}: {error}") from error
    if not recorder.launches:
        raise CheckError("no kernel launch was recorded: triton was imported under TRITON_INTERPRET=1 "
                         "before record_launches ran (run this script in its own process)")
    log(f"recorded {len(recorder.launches)} distinct launches from {len(cases)} cases")
    return recorder.launches


# --------------------------------------------------------------------------------------------
# 2. Compile (runs in a subprocess: its triton may be another version than the recorder's)
# --------------------------------------------------------------------------------------------


class _StandInTensor:
    """What Triton's binder reads of a tensor argument: its dtype and its address modulo 16."""

    def __init__(self, dtype, aligned: bool):
        self.dtype = dtype
        self.aligned = aligned

    def data_ptr(self) -> int:
        return 0 if self.aligned else 4


def _stand_in(encoded):
    """A launch argument back from `_encode`'s JSON."""
    import torch
    import triton.language as tl

    if isinstance(encoded, dict) and "tensor" in encoded:
        return _StandInTensor(getattr(torch, encoded["tensor"]), encoded["aligned"])
    if isinstance(encoded, dict) and "tl_dtype" in encoded:
        return tl.dtype(encoded["tl_dtype"])
    return encoded


def _specialize(launch: dict):
    """(kernel, signature, constexprs, attrs, options) that this triton would compile for sm_90.

    The binder and `_pack_args` are what `JITFunction.run` calls before it compiles (private,
    but the same in triton 3.6 through 3.9), so the specialization rules are that triton's own."""
    import importlib

    from triton.backends.compiler import GPUTarget
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    fn = getattr(importlib.import_module(launch["module"]), launch["kernel"])
    backend = make_backend(GPUTarget(*TARGET))
    binder = create_function_from_signature(fn.signature, fn.params, backend)
    args = {k: _stand_in(v) for k, v in launch["args"].items()}
    options = {k: _stand_in(v) for k, v in launch["options"].items()}
    bound, specialization, options_out = binder(**args, **options)
    _, signature, constexprs, attrs = fn._pack_args(backend, dict(options), bound, specialization,
                                                    options_out)
    return fn, signature, constexprs, attrs, options


def _specialization_key(launch: dict) -> str:
    fn, signature, constexprs, attrs, options = _specialize(launch)
    return repr((launch["module"], launch["kernel"], sorted(signature.items()),
                 sorted((k, repr(v)) for k, v in constexprs.items()),
                 sorted((k, repr(v)) for k, v in attrs.items()), sorted(options.items())))


def _resource_usage(cubin: bytes) -> dict:
    """REG / STACK / LOCAL / SHARED of the cubin's kernel, from the cuobjdump bundled with triton."""
    import re

    import triton

    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if not cuobjdump.exists():
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([str(cuobjdump), "--dump-resource-usage", f.name],
                             capture_output=True, text=True).stdout
    return {k: int(v) for k, v in re.findall(r"\b(REG|STACK|LOCAL|SHARED):(\d+)", out)}


def compile_launch(launch: dict) -> dict:
    """Compile one launch's specialization for sm_90: ok or the error, and its resources."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    start = time.perf_counter()
    result = {"ok": False}
    try:
        fn, signature, constexprs, attrs, options = _specialize(launch)
        names = list(signature)
        result["constexprs"] = {names[path[0]]: repr(value) for path, value in constexprs.items()}
        compiled = triton.compile(ASTSource(fn, signature, constexprs, attrs),
                                  target=GPUTarget(*TARGET), options=options)
    except Exception as error:  # the compiler's own message is the report
        result["error"] = _error_chain(error)
    else:
        usage = _resource_usage(compiled.asm["cubin"])
        shared = int(compiled.metadata.shared)
        result.update(ok=shared <= SM90_MAX_SHARED_BYTES, registers=usage.get("REG"),
                      # ptxas puts spills on the stack (cuobjdump's STACK; LOCAL counts local
                      # arrays, 0 for Triton kernels): both are per-thread local memory
                      spill_bytes=usage.get("STACK", 0) + usage.get("LOCAL", 0), shared_bytes=shared)
        if shared > SM90_MAX_SHARED_BYTES:
            result["error"] = (f"needs {shared} bytes of shared memory, over sm_90's "
                               f"{SM90_MAX_SHARED_BYTES}")
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def _error_chain(error: BaseException) -> str:
    """The error and its causes. Triton raises one CompilationError per call level, each with
    its function's source up to the call; the outer ones keep their position and call line."""
    parts = []
    while error is not None:
        parts.append(f"{type(error).__name__}: {str(error).strip()}")
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    outer = [lines[0] + "\n    ...\n" + "\n".join(lines[-2:]) if len(lines) > 4 else "\n".join(lines)
             for lines in (part.splitlines() for part in parts[:-2])]
    return "\n".join(outer + parts[-2:])


def _describe(spec: dict) -> str:
    constexprs = ", ".join(f"{k}={v}" for k, v in spec.get("constexprs", {}).items())
    options = ", ".join(f"{k}={v}" for k, v in spec["options"].items())
    return f"{spec['kernel']}[{constexprs}] {options}"


def compile_all(launches: list[dict], jobs: int) -> dict:
    """Dedupe the launches by specialization and compile each distinct one (`jobs` at a time)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import triton

    groups: dict[str, dict] = {}
    for launch in launches:
        try:
            key = _specialization_key(launch)
        except Exception:  # this triton cannot even bind it: compile_launch reports why
            key = json.dumps({k: launch[k] for k in ("module", "kernel", "args", "options")})
        if key in groups:
            groups[key]["cases"] += [c for c in launch["cases"] if c not in groups[key]["cases"]]
        else:
            groups[key] = {**launch, "cases": list(launch["cases"])}
    unique = list(groups.values())
    log(f"triton {triton.__version__} ({Path(triton.__file__).parent}): compiling "
        f"{len(unique)} distinct specializations of {len({(u['module'], u['kernel']) for u in unique})} "
        f"kernels for sm_90 on {jobs} processes")
    start = time.perf_counter()
    # longest argument lists first: the big backward kernels, slowest to compile, start early
    # so that no process idles at the end
    unique.sort(key=lambda u: -len(json.dumps(u["args"])))
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(compile_launch, launch): launch for launch in unique}
        for done, future in enumerate(as_completed(futures), 1):
            launch = futures[future]
            launch.update(future.result())
            status = "ok" if launch["ok"] else "FAILED"
            log(f"[{done}/{len(unique)}] {status} {launch['kernel']} ({launch['seconds']} s, "
                f"{launch.get('registers')} registers, {launch.get('spill_bytes')} B spilled, "
                f"{launch.get('shared_bytes')} B shared)")
    return {"triton_version": triton.__version__, "triton_path": str(Path(triton.__file__).parent),
            "target": "cuda sm_90", "seconds": round(time.perf_counter() - start, 1),
            "specializations": unique}


def ptxas_missing(triton_path: str | None) -> str | None:
    """Why nothing can compile for sm_90 here, or None (the triton install bundles ptxas)."""
    if os.environ.get("TRITON_PTXAS_PATH"):
        return None
    code = "import triton, pathlib; print(pathlib.Path(triton.__file__).parent)"
    root = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_compile_env(triton_path)).stdout.strip()
    ptxas = Path(root) / "backends" / "nvidia" / "bin" / "ptxas"
    return None if ptxas.exists() else f"no ptxas in the triton install at {root or '?'}"


def _compile_env(triton_path: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    paths = [triton_path] if triton_path else []
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def run_compile_subprocess(launches: list[dict], triton_path: str | None, jobs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="kernel-compile-") as tmp:
        record = Path(tmp) / "launches.json"
        report = Path(tmp) / "report.json"
        record.write_text(json.dumps(launches))
        env = _compile_env(triton_path)
        env["TRITON_CACHE_DIR"] = str(Path(tmp) / "cache")  # compile afresh, as CI does
        command = [sys.executable, __file__, "--compile-record", str(record), "--json", str(report),
                   "--jobs", str(jobs)]
        done = subprocess.run(command, env=env)
        if done.returncode != 0 or not report.exists():
            raise CheckError(f"the compile subprocess failed (exit {done.returncode}); see above")
        return json.loads(report.read_text())


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def summarize(report: dict) -> int:
    """Per-kernel lines on stderr; the number of failed specializations."""
    failed = [s for s in report["specializations"] if not s["ok"]]
    kernels = sorted({s["kernel"] for s in report["specializations"]})
    log(f"\n{len(report['specializations'])} specializations of {len(kernels)} kernels, triton "
        f"{report['triton_version']}, {report['seconds']} s")
    for kernel in kernels:
        runs = [s for s in report["specializations"] if s["kernel"] == kernel]
        bad = sum(not s["ok"] for s in runs)
        regs = max((s.get("registers") or 0) for s in runs)
        spills = max((s.get("spill_bytes") or 0) for s in runs)
        shared = max((s.get("shared_bytes") or 0) for s in runs)
        log(f"  {'FAILED' if bad else 'ok':6} {kernel}: {len(runs)} specializations"
            + (f", {bad} failed" if bad else "")
            + f"; at most {regs} registers, {spills} B spilled, {shared} B shared")
    for spec in failed:
        log(f"\nFAILED {spec['module']}.{_describe(spec)}\n  launched by: {'; '.join(spec['cases'][:5])}"
            f"\n  {spec.get('error', '').strip()}")
    return len(failed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--triton-path", metavar="DIR",
                        help="a directory holding another triton (pip install --target DIR), put "
                             "first on the compile subprocess's PYTHONPATH")
    parser.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 8),
                        help="compiles at a time (default: CPU count, at most 8: each process "
                             "holds ~0.4 GB)")
    parser.add_argument("--json", metavar="OUT", help="write every launch and its result here")
    parser.add_argument("--compile-record", metavar="JSON", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.compile_record:  # the subprocess: compile only, with its own triton
            report = compile_all(json.loads(Path(args.compile_record).read_text()), args.jobs)
            Path(args.json).write_text(json.dumps(report, indent=1))
            return 0
        if args.triton_path and not (Path(args.triton_path) / "triton").is_dir():
            raise CheckError(f"--triton-path {args.triton_path} holds no triton package; install "
                             "one there with pip install --no-deps --target DIR triton==3.6.0")
        missing = ptxas_missing(args.triton_path)
        if missing:
            raise CheckError(f"cannot compile for sm_90: {missing}")
        launches = record_launches()
        report = run_compile_subprocess(launches, args.triton_path, args.jobs)
    except CheckError as error:
        log(f"check_kernel_compile: {error}")
        return 2
    report["recorded_launches"] = len(launches)
    failures = summarize(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if failures:
        log(f"\n{failures} specialization(s) would fail on sm_90 with triton {report['triton_version']}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
