"""Benchmark: the local KServe model server over HTTP versus calling the model in process.

Measured side by side in one run (these machines are shared and noisy; compare the ratios):
- the model server (``components.model_server``) on loopback, v1 ``:predict`` with 1
  row and with a batch of rows per request, at 1, 8 and 32 concurrent clients (threads with
  keep-alive connections), plus v2 ``/infer`` at 1 client;
- the same SavedModel called in process through ``model_io.predict`` with the same batch
  sizes and the same number of threads.

Ratios: latency overhead = HTTP p50 / in-process p50; throughput ratio = in-process rows/s /
HTTP rows/s. Request counts are bounded, so a run takes about a minute on 2 cores.

A second table prices the request check (``request_contract``) and prediction logging
(``--log-dir``): the same one-row v1 request to two servers, one with both, one with neither
(``--no-request-check``), in alternating rounds so that noise hits both alike.

    bash scripts/in-runtime.sh python bench/serving.py > bench/results/serving.md
    bash scripts/in-runtime.sh python bench/serving.py --model-dir /path/to/model   # your model

The Markdown goes to stdout (or ``--output PATH``); logs go to stderr. By default the model is a
small Keras MLP with its preprocessing (normalisation, vocabularies) inside the SavedModel,
trained for one epoch on demo data, following the train_model serving contract.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

logger = logging.getLogger("bench.serving")

CLIENTS = (1, 8, 32)


def build_model(model_dir: Path) -> None:
    """The model the pipeline serves: train_model on 4,000 demo rows (2 epochs)."""
    import tensorflow_data_validation as tfdv

    from components.make_demo_data import runtime as demo
    from components.train_model import runtime as train

    work = model_dir.parent
    df = demo.generate(4000, seed=0)
    data = demo.write(df, work / "data.csv")
    schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(df))
    tfdv.write_schema_text(schema, str(work / "schema.pbtxt"))
    train.run(
        data_uri=str(data),
        schema_path=str(work / "schema.pbtxt"),
        model_dir=str(model_dir),
        eval_data_path=str(work / "eval.parquet"),
        tensorboard_dir=str(work / "tensorboard"),
        label=demo.LABEL,
        epochs=2,
        verbose=0,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def run_threads(clients: int, requests: int, work) -> tuple[list[float], float]:
    """``requests`` calls of ``work(conn_state)`` spread over ``clients`` threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def worker(count: int) -> None:
        state: dict = {}
        local = []
        barrier.wait()
        for _ in range(count):
            start = time.perf_counter()
            work(state)
            local.append(time.perf_counter() - start)
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(n,)) for n in per_thread]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start


def http_work(port: int, path: str, body: bytes):
    def work(state: dict) -> None:
        conn = state.get("conn")
        if conn is None:
            conn = state["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:200]!r}")

    return work


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default="", help="model to serve (default: build a small Keras MLP)")
    parser.add_argument("--batch", type=int, default=32, help="rows per batched request")
    parser.add_argument("--requests", type=int, default=240, help="requests per configuration (bounded)")
    parser.add_argument("--output", default="", help="also write the Markdown here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")

    import numpy as np

    from components import model_io
    from components.deploy_model import _local, _smoke
    from components.make_demo_data import runtime as demo

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    model_dir = Path(args.model_dir) if args.model_dir else tmp / "model"
    if not args.model_dir:
        logger.info("building the benchmark model in %s", model_dir)
        build_model(model_dir)
    loaded = model_io.load(str(model_dir))
    inputs = model_io.serving_inputs(loaded)
    dtypes = {n: d.name for n, d in inputs.items()}
    frame = demo.generate(max(args.batch, 1), seed=1)[list(inputs)]
    frames = {1: frame.head(1), args.batch: frame.head(args.batch)}

    rows = []
    with _local.LocalServer(str(model_dir), "bench", 180, str(tmp / "server.log")) as server:
        port = server.port
        # sanity: the server answers what the model gives in process
        served = _smoke.predict_v1(server.url, "bench", frames[args.batch])
        offline = model_io.predict(loaded, frames[args.batch])
        max_diff = float(np.max(np.abs(served - offline)))
        configs = [("v1", b, c) for b in frames for c in CLIENTS] + [("v2", b, 1) for b in frames]
        for protocol, batch, clients in configs:
            sub = frames[batch]
            if protocol == "v1":
                path, body = "/v1/models/bench:predict", {"instances": _smoke.instances(sub)}
            else:
                path, body = "/v2/models/bench/infer", {"inputs": _smoke.v2_inputs(sub, dtypes)}
            work = http_work(port, path, json.dumps(body).encode())
            run_threads(clients, clients * 3, work)  # warm-up: connections, graph tracing
            requests = max(args.requests, clients * 4)
            http_lat, http_wall = run_threads(clients, requests, work)

            def inproc(state, sub=sub):
                model_io.predict(loaded, sub)

            run_threads(clients, clients * 3, inproc)
            proc_lat, proc_wall = run_threads(clients, requests, inproc)
            row = {
                "protocol": protocol,
                "batch": batch,
                "clients": clients,
                "requests": requests,
                "http_p50": percentile(http_lat, 50) * 1e3,
                "http_p99": percentile(http_lat, 99) * 1e3,
                "http_rows_s": requests * batch / http_wall,
                "proc_p50": percentile(proc_lat, 50) * 1e3,
                "proc_p99": percentile(proc_lat, 99) * 1e3,
                "proc_rows_s": requests * batch / proc_wall,
            }
            row["latency_ratio"] = row["http_p50"] / row["proc_p50"]
            row["throughput_ratio"] = row["proc_rows_s"] / row["http_rows_s"]
            rows.append(row)
            logger.info("%s", {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})

    checks = check_overhead(model_dir, frames[1], tmp, args.requests)

    command = (
        "bash scripts/in-runtime.sh python bench/serving.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    )
    lines = [
        "# Serving benchmark: local KServe model server vs in-process calls",
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        f"- model: {args.model_dir or 'train_model on 4,000 demo rows (MLP 64-32)'}",
        f"- server: components.model_server (kserve {_kserve_version()}, 1 uvicorn worker), "
        "loopback HTTP, keep-alive connections; clients are threads in the benchmark process "
        "(they share the cores with the server)",
        f"- check: served vs in-process predictions, max |diff| = {max_diff:.2g}",
        "",
        "latency ratio = HTTP p50 / in-process p50; throughput ratio = in-process rows/s / HTTP rows/s "
        "(same batch, same number of concurrent callers).",
        "",
        "| protocol | rows/request | clients | requests | HTTP p50 ms | HTTP p99 ms | HTTP rows/s "
        "| in-process p50 ms | in-process p99 ms | in-process rows/s | latency ratio | throughput ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['protocol']} | {r['batch']} | {r['clients']} | {r['requests']} | {r['http_p50']:.2f} "
            f"| {r['http_p99']:.2f} | {r['http_rows_s']:.0f} | {r['proc_p50']:.2f} | {r['proc_p99']:.2f} "
            f"| {r['proc_rows_s']:.0f} | {r['latency_ratio']:.1f}x | {r['throughput_ratio']:.1f}x |"
        )
    lines += [
        "",
        "## Request check and prediction logging",
        "",
        f"One-row v1 requests, 1 client, {checks['rounds']} alternating rounds of {checks['per_round']} "
        "requests per server; the model carries its request contract.",
        "",
        "| server | p50 ms | p99 ms |",
        "|---|---|---|",
        f"| check off, no logging | {checks['off_p50']:.2f} | {checks['off_p99']:.2f} |",
        f"| check on, logging on | {checks['on_p50']:.2f} | {checks['on_p99']:.2f} |",
        "",
        f"p50 ratio (on / off): **{checks['on_p50'] / checks['off_p50']:.3f}** (target: at most 1.10)",
    ]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    if args.output:
        Path(args.output).write_text(markdown)
    return 0


def check_overhead(model_dir: Path, one_row, tmp: Path, requests: int, rounds: int = 6) -> dict:
    """p50/p99 of one-row requests with the request check and logging on and off, interleaved."""
    from components import request_contract
    from components.deploy_model import _local, _smoke
    from components.make_demo_data import runtime as demo

    version_dir = model_dir / "1"
    if request_contract.load(str(version_dir)) is None:  # a --model-dir from before contracts
        contract = request_contract.build(demo.generate(2000, seed=0), _kinds(model_dir))
        request_contract.write(str(version_dir), contract)
    body = json.dumps({"instances": _smoke.instances(one_row)}).encode()
    per_round = max(requests // rounds, 20)
    latencies: dict[str, list[float]] = {"off": [], "on": []}
    with (
        _local.LocalServer(str(model_dir), "bench", 180, str(tmp / "off.log"), ["--no-request-check"]) as off,
        _local.LocalServer(
            str(model_dir), "bench", 180, str(tmp / "on.log"), ["--log-dir", str(tmp / "logs")]
        ) as on,
    ):
        works = {
            name: http_work(server.port, "/v1/models/bench:predict", body)
            for name, server in (("off", off), ("on", on))
        }
        for work in works.values():
            run_threads(1, 20, work)  # warm-up
        for _ in range(rounds):
            for name, work in works.items():
                latencies[name] += run_threads(1, per_round, work)[0]
    result = {"rounds": rounds, "per_round": per_round}
    for name, values in latencies.items():
        result[f"{name}_p50"] = percentile(values, 50) * 1e3
        result[f"{name}_p99"] = percentile(values, 99) * 1e3
    logger.info("request check and logging: %s", result)
    return result


def _kinds(model_dir: Path) -> dict[str, str]:
    from components import model_io

    kinds = {"float32": "float", "int64": "int", "string": "string"}
    return {n: kinds[d.name] for n, d in model_io.serving_inputs(model_io.load(str(model_dir))).items()}


def _kserve_version() -> str:
    from importlib.metadata import version

    return version("kserve")


if __name__ == "__main__":
    sys.exit(main())
