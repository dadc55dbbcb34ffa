"""The process every benchmark measurement runs in: `python bench/child.py MODE [ARGS]`.

Cold-start modes do only what FC does in a fresh instance, then print ONE JSON line
and flush; the parent stops its clock when that line arrives (see coldstart.py).
Before the timed work this file imports only `os`, `sys` and `time` (already loaded
by the interpreter itself), so the three cold modes differ in nothing but the work:

  interpreter         nothing: the cost of spawning the interpreter (context for the others)
  baseline            import the ENS client (`alibabacloud_ens20171110.client`), nothing else
  ours EVENT          import index, index.initialize(ctx), index.handler(event_bytes, ctx)
  naive EVENT         import bench/naive_handler.py, handler(event_bytes, ctx)

The other modes are whole benchmarks run in a process of their own (the emulator
stays alone in the parent, so client and server never share a GIL):

  warm N WARMUP       bench.warm.child_main
  batch EVENT         bench.batch.child_main
  planner N           bench.plan_micro.child_main
  policy-size DIR     bench.policy_size.child_main
  book [REDIS_URL]    bench.book.child_main

All modes read the function's configuration from the environment, as FC gives it.
"""
import os
import sys
import time
from typing import Any

T0 = time.perf_counter()
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The code FC deploys; bench/run.sh --function-dir points it at a scratch copy (to try a fix).
FUNCTION_DIR = os.environ.get("BENCH_FUNCTION_DIR") or os.path.join(ROOT, "functions", "autoscaler")


class _Function:
    timeout = 60


class Context:
    """What the handler reads of FC's context."""

    function = _Function()

    def __init__(self, request_id: str = "bench-1") -> None:
        self.request_id = request_id


def report(**fields: object) -> None:
    import json
    import resource

    fields["child_s"] = time.perf_counter() - T0
    fields["cpu_s"] = time.process_time()  # user + system CPU of this process since it started
    fields["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def timed_scale_out(handler: Any, event: bytes, context: Any, what: str) -> float:
    """Seconds `handler` took on `event`, which must have ended `scaled` (a figure of anything else
    would time another path)."""
    started = time.perf_counter()
    status = status_of(handler(event, context))
    took = time.perf_counter() - started
    if status != "scaled":
        raise RuntimeError(f"{what} event ended {status!r}, not 'scaled'")
    return took


def status_of(returned: str) -> str:
    import json

    out = json.loads(returned)
    if "statusCode" in out:  # the HTTP trigger's response
        out = json.loads(out["body"])
    return str(out.get("status"))


def main(argv: list) -> None:
    mode, args = argv[0], argv[1:]
    sys.path.insert(0, FUNCTION_DIR)  # FC puts the code directory on sys.path: same for every mode
    if mode == "interpreter":
        report(status="started")
    elif mode == "baseline":
        from alibabacloud_ens20171110.client import Client  # noqa: F401

        report(status="imported", modules=len(sys.modules))
    elif mode == "ours":
        with open(args[0], "rb") as f:
            event = f.read()
        context = Context()
        t_start = time.perf_counter()
        import index

        t_imported = time.perf_counter()
        index.initialize(context)  # s.yaml configures the initializer: FC runs it before the first event
        t_initialized = time.perf_counter()
        status = status_of(index.handler(event, context))
        t_handled = time.perf_counter()
        report(status=status, import_s=t_imported - t_start, initialize_s=t_initialized - t_imported,
               handler_s=t_handled - t_initialized, modules=len(sys.modules))
    elif mode == "naive":
        with open(args[0], "rb") as f:
            event = f.read()
        import naive_handler  # bench/ is sys.path[1]: the script's own directory

        report(status=status_of(naive_handler.handler(event, Context())), modules=len(sys.modules))
    else:
        sys.path.insert(0, ROOT)
        if mode == "warm":
            from bench.warm import child_main
        elif mode == "batch":
            from bench.batch import child_main
        elif mode == "planner":
            from bench.plan_micro import child_main
        elif mode == "policy-size":
            from bench.policy_size import child_main
        elif mode == "book":
            from bench.book import child_main
        else:
            raise SystemExit(f"unknown mode {mode!r}")
        report(**child_main(*args))


if __name__ == "__main__":
    main(sys.argv[1:])
