"""The command line and the composition root: lsp | mcp | http | predict | eval | bench | train.

It builds the Service from Settings and hands it to the surface asked for (the HTTP app gets
the MCP server to serve at /mcp from here, so no surface imports another).
Logging goes to stderr before anything else runs: in the server modes stdout is the protocol's.
Exit codes: 0 ok, 2 bad input (a spec that failed, an invalid request or eval file), 1 a bug.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opensesame_predictor import __version__

# Each subcommand imports what it needs when it runs: `--help` and a one-shot `predict` start
# fast (numpy, pydantic models and the faces' libraries load only for the command using them).
if TYPE_CHECKING:
    from fastapi import FastAPI

    from opensesame_predictor.config import Settings
    from opensesame_predictor.core.catalog import Catalog, ProgressCallback
    from opensesame_predictor.core.models import PredictResult
    from opensesame_predictor.service import Service
    from opensesame_predictor.surfaces.http.app import Mounted

EXIT_OK, EXIT_BUG, EXIT_BAD_INPUT = 0, 1, 2
EXIT_CLOSED_PIPE = 128 + 13  # SIGPIPE, as `yes | head -1` reports it

log = logging.getLogger("opensesame_predictor")


def printable(text: str) -> str:
    """Text with control characters escaped (core.guardrails.printable, imported when used)."""
    from opensesame_predictor.core.guardrails import printable as escape

    return escape(text)


class _PrintableFormatter(logging.Formatter):
    """Log lines with control characters escaped: a spec's file name or text must not drive
    the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("pygls").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(console=_stderr_console(), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int, item: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{label} {Path(item).name}")

        yield update


def _settings(args: argparse.Namespace) -> Settings:
    from opensesame_predictor.config import Settings

    overrides: dict[str, Any] = {}
    if getattr(args, "spec", None):
        overrides["specs"] = args.spec
    if getattr(args, "workspace", None):
        overrides["workspace"] = args.workspace
    if getattr(args, "log_level", None):
        overrides["log_level"] = args.log_level
    return Settings(**overrides)


def _report_spec_errors(catalog: Catalog) -> bool:
    for spec in catalog.errors:
        print(printable(f"error: {spec.source}: {spec.error}"), file=sys.stderr)
    for spec in catalog.specs:
        for warning in spec.warnings:
            print(printable(f"warning: {spec.source}: {warning}"), file=sys.stderr)
    return bool(catalog.errors)


def _width() -> int:
    """Columns to wrap text to: the terminal's, or $COLUMNS, or 80 when neither says."""
    import shutil

    return max(shutil.get_terminal_size((80, 24)).columns, 40)


def _wrapped(text: str, first: str, indent: int, width: int) -> list[str]:
    """`text` wrapped at spaces after `first`; a word (a call, a number, a value) is never
    broken, however narrow the terminal."""
    import textwrap

    return textwrap.wrap(
        printable(text),
        width=max(width, indent + 20),
        initial_indent=" " * indent + first,
        subsequent_indent=" " * (indent + len(first)),
        break_long_words=False,
        break_on_hyphens=False,
    ) or [" " * indent + first.rstrip()]


def _print_table(result: PredictResult) -> None:
    """The predictions as plain text that reads the same in a terminal of any width, in a
    file and through a pipe: rank, confidence and call on one line, never cut; parameters and
    reasons beneath, wrapped at spaces."""
    from opensesame_predictor.core.models import shown_confidence
    from opensesame_predictor.present import processing_summary

    width = _width()
    meta = result.metadata
    figures = [shown_confidence(p.confidence, meta.abstain) for p in result.predictions]
    column = max([len("confidence"), *map(len, figures)])
    indent = 4 + column + 2
    lines = [f"{'#':<4}{'confidence':<{column}}  call"]
    for p, figure in zip(result.predictions, figures, strict=True):
        lines.append(f"{p.rank:<4}{figure:<{column}}  {printable(p.api_call)}")
        for number, (name, value) in enumerate(p.parameters.items()):
            source = p.parameter_sources.get(name)
            text = f"{name}={json.dumps(value, ensure_ascii=False, default=str)}"
            text += f" [{source}]" if source else ""
            label = "parameters: " if number == 0 else " " * len("parameters: ")
            lines += _wrapped(text, label, indent, width)
        if p.reasons:
            lines += _wrapped("; ".join(p.reasons), "why: ", indent, width)
    note = " (abstains: nothing in the catalog fits well)" if meta.abstain else ""
    lines += _wrapped(
        f"{result.processing_time_ms:.1f} ms, {processing_summary(meta)}{note}", "", 0, width
    )
    print("\n".join(lines))


def cmd_predict(args: argparse.Namespace) -> int:
    from opensesame_predictor.service import Service

    settings = _settings(args)
    if not settings.specs and not settings.workspace:
        print("error: give at least one --spec or a --workspace", file=sys.stderr)
        return EXIT_BAD_INPUT
    if (args.prompt is None) != args.batch:
        print("error: give a prompt, or --batch with requests on stdin", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.batch and not args.prompt and not args.history:
        print(
            "error: prompt, --history: neither is given, so there is nothing to go on: give a "
            "prompt (what to do), a --history (the calls made so far), or both",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    with progress_bar("loading specs", not (args.json or args.batch)) as progress:
        service = Service.from_settings(settings, progress)
    failed = _report_spec_errors(service.catalog)
    if not service.catalog.operations:
        return EXIT_BAD_INPUT
    if args.batch:
        errors = asyncio.run(_predict_lines(service, sys.stdin))
        return EXIT_BAD_INPUT if failed or errors else EXIT_OK
    request = {
        "prompt": args.prompt,
        "history": args.history or [],
        "max_predictions": args.max,
        "temperature": args.temperature,
    }
    result = asyncio.run(service.predict(request))
    for call in result.metadata.unmatched_history:
        print(
            printable(f"warning: history {call!r} matches no operation; ignored"), file=sys.stderr
        )
    if args.json:
        output = result.model_dump(mode="json")
        output["metadata"]["refiner"] = service.refiner.state.model_dump(mode="json")
        print(json.dumps(output, indent=2))
    else:
        _print_table(result)
    return EXIT_BAD_INPUT if failed else EXIT_OK


async def _predict_lines(service: Service, lines: Iterable[str]) -> int:
    """`predict --batch`: one JSON line out per non-blank line in, in order; a line that is
    no valid request gets its error and the others are still answered. Returns the errors."""
    from opensesame_predictor.core.errors import OpenSesameError

    errors = 0
    for index, line in enumerate(line for line in lines if line.strip()):
        answer: dict[str, Any] = {"index": index}
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError(request)
            result = await service.predict(request)
            answer["result"] = result.model_dump(mode="json")
        except (ValueError, RecursionError):
            answer["error"] = {"code": "invalid_json", "message": "line is not a JSON object"}
        except OpenSesameError as exc:
            answer["error"] = {"code": exc.code, "message": exc.message}
        errors += "error" in answer
        print(json.dumps(answer), flush=True)
    return errors


def cmd_eval(args: argparse.Namespace) -> int:
    from opensesame_predictor.core.errors import OpenSesameError
    from opensesame_predictor.core.predictor import Predictor
    from opensesame_predictor.core.ranker import Ranker
    from opensesame_predictor.offline.evaluate import evaluate, read_cases
    from opensesame_predictor.service import Service

    settings = _settings(args)
    predictors: dict[str, Predictor] = {}
    ranker = None
    if args.weights == "hand":
        ranker = Ranker()
    elif args.weights:
        ranker = Ranker.load(Path(args.weights))
        if ranker.version == Ranker().version:
            print(printable(f"error: {args.weights}: not a weights file"), file=sys.stderr)
            return EXIT_BAD_INPUT

    def predictor_for(location: str) -> Predictor:
        """One predictor per spec file, shared by every case and file that names it."""
        if location not in predictors:
            service = Service(settings)
            service.set_sources([location])
            catalog = service.load()
            if catalog.errors:
                raise OpenSesameError(f"{location}: {catalog.errors[0].error}")
            if ranker is not None:
                service.predictor.ranker = ranker
            predictors[location] = service.predictor
        return predictors[location]

    results: dict[str, dict[str, Any]] = {}
    for name in args.files:
        path = Path(name)
        cases = read_cases(path)
        with progress_bar(f"evaluating {path.name}", not args.json) as progress:
            ticks = iter(range(1, len(cases) + 1))

            def tick(
                cb: ProgressCallback | None = progress,
                total: int = len(cases),
                ticks: Iterator[int] = ticks,
            ) -> None:
                if cb:
                    cb(next(ticks), total, "")

            metrics = evaluate(cases, predictor_for, tick, args.by_step)
        results[path.name] = metrics.as_dict()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print_metrics(results)
    return EXIT_OK


def _print_metrics(results: dict[str, dict[str, Any]]) -> None:
    """One row per file, every figure whole (an 80-column terminal or a pipe gets the same
    plain text; a long file name pushes the figures right rather than being cut)."""
    columns = ("n", "top1", "recall_at_5", "mrr", "ece", "p50_ms", "p95_ms")
    rows = [["file", *columns]]
    for name, metrics in results.items():
        rows.append([printable(name), *(_figure(metrics[c]) for c in columns)])
        for step, part in metrics.get("by_step", {}).items():  # `--by-step`: indented below
            rows.append([f"  {step} calls", *(_figure(part[c]) for c in columns)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns) + 1)]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(widths[i]) for i, cell in enumerate(row[1:], start=1)]
        print("  ".join(cells).rstrip())


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def cmd_bench(args: argparse.Namespace) -> int:
    from opensesame_predictor.offline.bench import run_bench

    settings = _settings(args)
    if not settings.specs and not settings.workspace:
        print("error: give at least one --spec or a --workspace", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.http:
        from opensesame_predictor.offline.http_bench import run_http_bench

        numbers = run_http_bench(
            settings, args.requests or 1500, args.workers, args.rate_limit_storage or ""
        )
    elif args.lsp:
        from opensesame_predictor.offline.lsp_bench import run_lsp_bench

        numbers = run_lsp_bench(settings, args.requests or 200)
    else:
        numbers = run_bench(settings, args.requests or 200)
    if args.json:
        print(json.dumps(numbers, indent=2))
    else:
        for key, value in numbers.items():
            print(f"{key:>16}  {value}")
    return EXIT_OK


def _add_sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spec", action="append", metavar="SRC", help="spec file, folder or URL (repeatable)"
    )
    parser.add_argument("--workspace", metavar="DIR", help="folder to search for specs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opensesame-predictor",
        description="Which API call should I make next? Ranked from your OpenAPI specs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING (default) or ERROR")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    predict = commands.add_parser("predict", help="rank the next API call for a prompt")
    predict.add_argument(
        "prompt", nargs="?", help="what you want to do, in your words (not with --batch)"
    )
    _add_sources(predict)
    predict.add_argument(
        "--history", action="append", metavar="CALL", help="a call already made, oldest first"
    )
    predict.add_argument("--max", type=int, default=5, help="how many predictions (1-20)")
    predict.add_argument("--temperature", type=float, default=0.7, help="0 = peaked, 2 = flat")
    predict.add_argument("--json", action="store_true", help="print the wire-format JSON")
    predict.add_argument(
        "--batch",
        action="store_true",
        help="read /predict bodies as JSON Lines from stdin; write one JSON line per request "
        "(its index and result, or its error) to stdout",
    )
    predict.set_defaults(handler=cmd_predict)

    evaluate = commands.add_parser("eval", help="measure ranking quality on JSONL cases")
    evaluate.add_argument(
        "files", nargs="+", metavar="FILE.jsonl", help="cases, one JSON object a line (README)"
    )
    evaluate.add_argument(
        "--weights", metavar="PATH", help="a weights file from `train`, or 'hand' for hand-set"
    )
    evaluate.add_argument(
        "--by-step",
        action="store_true",
        help="the metrics of each file's first calls (no history) and later calls too",
    )
    evaluate.add_argument("--json", action="store_true", help="print the metrics per file as JSON")
    evaluate.set_defaults(handler=cmd_eval)

    bench = commands.add_parser("bench", help="measure load and predict latency, and memory")
    _add_sources(bench)
    bench.add_argument(
        "--requests",
        type=int,
        default=None,
        help="predict calls to time (default 200); with --http, the POST /predict requests "
        "sent in all: warm-up, burst and paced at 100/s (default 1500)",
    )
    surface = bench.add_mutually_exclusive_group()
    surface.add_argument("--http", action="store_true", help="load-test POST /predict instead")
    surface.add_argument("--lsp", action="store_true", help="time completions over stdio instead")
    bench.add_argument(
        "--workers", type=int, default=1, metavar="N", help="--http: server worker processes"
    )
    bench.add_argument(
        "--rate-limit-storage",
        metavar="URI",
        help="--http: rate limits on through this storage (e.g. redis://127.0.0.1:6379), "
        "and a check that 40 users get exactly their quota across the workers",
    )
    bench.add_argument("--json", action="store_true", help="print the numbers as JSON")
    bench.set_defaults(handler=cmd_bench)

    train = commands.add_parser(
        "train",
        help="refit the ranker's weights on synthetic cases, validated on APIs left out",
    )
    train.add_argument(
        "--spec",
        action="append",
        metavar="SRC",
        help="training specs: files, folders or URLs (default: fixtures/)",
    )
    train.add_argument(
        "--output",
        metavar="PATH",
        default="weights.json",
        help="where to write the weights (default: ./weights.json; the predictor reads "
        "server/opensesame_predictor/data/weights.json)",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=13,
        help="seed of the synthetic cases: the same seed and specs give the same weights (13)",
    )
    train.add_argument(
        "--wording",
        # the names of `phrasing.WORDINGS`, spelled out: importing it would load numpy on `--help`
        choices=["plain", "hard", "alternate", "asked"],
        default="plain",
        help="how the synthetic requests are worded: plain (shipped), hard (as far from the "
        "operation's words as people's), the two in turn, or asked (plain, and asking for what "
        "a call returns); for experiments (README, 'Tried')",
    )
    train.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    train.add_argument(
        "--folds", type=int, default=5, help="folds of the leave-API-out validation (1: none)"
    )
    train.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="FEATURE",
        help="leave out a feature or group (lexical, intent, history, missing_ids, "
        "lookup_by_name, making, order, repeats, api, evidence), for ablations",
    )
    train.add_argument(
        "--authored",
        action="append",
        default=[],
        metavar="FILE.jsonl",
        type=Path,
        help="requests people wrote over some of the training specs (validation/): scored by "
        "weights fitted without their APIs, and calibrated on (each reported with a "
        "calibration fitted without it)",
    )
    train.add_argument(
        "--authored-score-only",
        action="append",
        default=[],
        metavar="FILE.jsonl",
        type=Path,
        help="like --authored, but not calibrated on: its ECE is out of sample",
    )
    train.add_argument(
        "--learn-authored",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="also learn from the --authored and --authored-score-only files' cases, together "
        "this share of the fit (0: scored only); each file is then scored by a fit that learned "
        "only from the others' cases that load none of its APIs",
    )
    train.add_argument(
        "--fold-models",
        type=Path,
        metavar="FOLDER",
        help="the sentence models tuned on some folds only (`make encoder` puts them in "
        ".vectors-build/tuning): each fold's cases are read by one not tuned on it; without "
        "them, the specs the shipped model was tuned on are left out",
    )
    train.add_argument(
        "--dump",
        type=Path,
        metavar="FILE.npz",
        help="also save the ranked cases, synthetic and authored (`offline/dump.py`), to judge "
        "a change to the fit without ranking them again",
    )
    train.add_argument("--json", action="store_true", help="print the validation as JSON")
    train.set_defaults(handler=cmd_train)

    lsp = commands.add_parser("lsp", help="run the language server on stdio")
    _add_sources(lsp)
    lsp.set_defaults(handler=cmd_lsp)

    mcp = commands.add_parser("mcp", help="run the MCP server (stdio or streamable HTTP)")
    _add_sources(mcp)
    mcp.add_argument(
        "--transport",
        choices=("stdio", "streamable-http"),
        default="stdio",
        help="stdio for a client that starts the server (default), or streamable-http",
    )
    mcp.add_argument("--host", default=None, help="streamable-http: address (127.0.0.1)")
    mcp.add_argument("--port", type=int, default=None, help="streamable-http: port (8000)")
    mcp.set_defaults(handler=cmd_mcp)

    http = commands.add_parser("http", help="serve POST /predict, /health, /metrics and /docs")
    _add_sources(http)
    http.add_argument("--host", default=None, help="address to bind (127.0.0.1)")
    http.add_argument("--port", type=int, default=None, help="port (8000)")
    http.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (1); more than one needs rate limits shared through Redis",
    )
    http.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve beyond loopback without API keys (only behind something that authenticates)",
    )
    http.set_defaults(handler=cmd_http)

    api_key = commands.add_parser(
        "api-key", help="make a new API key and print it with the hash OPENSESAME_API_KEYS takes"
    )
    api_key.set_defaults(handler=cmd_api_key)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from opensesame_predictor.offline.train import train

    specs = args.spec or ["fixtures"]
    if not args.spec and not Path("fixtures").is_dir():
        print(
            "error: no spec to train on: give --spec FILE|FOLDER|URL (by default `train` reads "
            "./fixtures, which is only there in a clone of the project)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        with progress_bar("training:", not args.json) as progress:
            ranker, meta = train(
                specs,
                seed=args.seed,
                c=args.c,
                drop=tuple(args.drop),
                folds=args.folds,
                progress=progress,
                authored=args.authored,
                scored_only=args.authored_score_only,
                fold_models=args.fold_models,
                dump=args.dump,
                wording=args.wording,
                learn_authored=args.learn_authored,
            )
    except ValueError as exc:
        print(printable(f"error: {exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    output = Path(args.output)
    ranker.save(output, meta)
    if args.json:
        print(json.dumps({**meta.get("validation", {}), **meta.get("authored", {})}, indent=2))
        return EXIT_OK
    print(f"wrote {output}: {meta['cases']} synthetic cases from {len(meta['trained_on'])} specs")
    validation = meta.get("validation")
    if validation:
        print(f"leave-API-out validation ({meta['folds']} folds):")
        rows = {"all": validation["overall"], **validation["by_context"], **validation["by_kind"]}
        print(f"  {'cases':<12}{'n':>7}{'top1':>8}{'R@5':>8}{'MRR':>8}{'ECE':>8}")
        for name, row in rows.items():
            print(
                f"  {name:<12}{row['n']:>7}{row['top1']:>8.3f}{row['recall_at_5']:>8.3f}"
                f"{row['mrr']:>8.3f}{row['ece']:>8.3f}"
            )
    for name, row in meta.get("authored", {}).items():
        print(
            f"authored {name} (its APIs left out of the fit): n {row['n']}, top-1 "
            f"{row['top1']:.3f}, R@5 {row['recall_at_5']:.3f}, MRR {row['mrr']:.3f}, "
            f"ECE {row['ece']:.3f} "
            f"({'calibrated on the others' if row['calibrated_on'] else 'not calibrated on'})"
        )
    return EXIT_OK


def _service(settings: Settings) -> Service:
    """The service over the settings' sources, not loaded yet: each surface loads it in the
    background and answers meanwhile."""
    from opensesame_predictor.service import Service

    service = Service(settings)
    service.set_sources(settings.specs, settings.workspace or None)
    return service


def mcp_mount(service: Service) -> Mounted:
    """The MCP server over the service as the HTTP app serves it: streamable HTTP at /mcp with
    its Host/Origin checks, the client's roots never trusted (any client may connect)."""
    from opensesame_predictor.surfaces.http.app import Mounted
    from opensesame_predictor.surfaces.mcp.server import build_server, transport_security

    host = service.settings.api_host
    server = build_server(service, trust_client_roots=False)
    app = server.streamable_http_app(host=host, transport_security=transport_security(host))
    return Mounted(app.routes, server.session_manager.run)


def http_app(service: Service, **options: Any) -> FastAPI:
    """The HTTP app with the MCP server mounted, as `opensesame-predictor http` serves it."""
    from opensesame_predictor.surfaces.http.app import create_app

    return create_app(service, mounted=[mcp_mount(service)], **options)


def cmd_lsp(args: argparse.Namespace) -> int:
    from opensesame_predictor.service import Service
    from opensesame_predictor.surfaces.lsp.server import run

    # the language server resolves its sources itself, with the editor's folders, and warns
    # in the editor about those it cannot read
    return run(Service(_settings(args)))


def cmd_mcp(args: argparse.Namespace) -> int:
    from opensesame_predictor.surfaces.mcp.server import run

    service = _service(_settings(args))
    return run(service, transport=args.transport, host=args.host, port=args.port)


def cmd_http(args: argparse.Namespace) -> int:
    from opensesame_predictor.surfaces.http.app import run

    settings = _settings(args)
    updates: dict[str, Any] = {"api_host": args.host} if args.host else {}
    if args.workers is not None:
        updates["http_workers"] = args.workers
    if updates:  # the workers read the settings back: they must hold the flags too
        settings = type(settings)(**{**settings.model_dump(), **updates})
    service = _service(settings)
    return run(
        service,
        host=args.host,
        port=args.port,
        mounted=[mcp_mount(service)],
        insecure_no_auth=args.insecure_no_auth,
        worker_factory="opensesame_predictor.cli:worker_app",
    )


def worker_app() -> FastAPI:
    """One HTTP worker's app, from the settings its parent put in the environment."""
    from opensesame_predictor.config import Settings
    from opensesame_predictor.surfaces.http.workers import configure_worker

    settings = Settings()
    configure_logging(settings.log_level)
    configure_worker(settings.http_header_timeout_seconds)
    return http_app(_service(settings))


def cmd_api_key(_: argparse.Namespace) -> int:
    from opensesame_predictor.surfaces.http.auth import hash_key, new_key

    key = new_key()
    print(f"key:  {key}    (give this to the client; it is not stored anywhere)")
    print(f"hash: {hash_key(key)}    (add this to OPENSESAME_API_KEYS, comma-separated)")
    return EXIT_OK


Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    if "--http" in arguments and "bench" not in arguments:  # `opensesame-predictor --http`
        arguments[arguments.index("--http")] = "http"
    args = parser.parse_args(arguments)
    from opensesame_predictor.config import Settings
    from opensesame_predictor.core.errors import OpenSesameError

    configure_logging(args.log_level or Settings().log_level)
    handler: Handler = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except OpenSesameError as exc:
        print(printable(f"error: {exc.message}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


def _closed_pipe() -> int:
    """The reader of stdout went away (`... | head -1`): stop quietly, as the standard tools
    do, with their exit status (128 + SIGPIPE). What is still buffered goes to /dev/null, so
    the interpreter's own flush at exit finds nothing to complain about."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE
